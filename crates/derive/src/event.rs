//! `#[derive(Event)]`.
//!
//! Every readable field occupies a range of ids: one for a value, one per
//! leaf for a nested struct (`EventField::WIDTH`). The ranges are numbered
//! by constants in declaration order, so `field` is one `match` on ranges
//! and resolving a name walks the path segment by segment.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Data, DeriveInput, Fields, GenericParam, Lifetime, Type};

use crate::attrs::{Container, Member};

/// One readable field.
struct Field<'a> {
    /// How the struct names it (`self.#access`).
    access: &'a syn::Ident,
    /// Its type with every lifetime made `'static` (for the constants).
    static_ty: Type,
    /// The name patterns use; `None` when flattened.
    name: Option<String>,
    /// Where errors about the field point.
    span: Span,
}

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(_) | Fields::Unit => {
                return Err(syn::Error::new(
                    ident.span(),
                    "#[derive(Event)] needs a struct with named fields: patterns read fields by name",
                ))
            }
        },
        Data::Enum(_) => {
            return Err(syn::Error::new(
                ident.span(),
                "#[derive(Event)] needs a struct with named fields; for an enum read as a string, derive `EventValue`",
            ))
        }
        Data::Union(_) => {
            return Err(syn::Error::new(
                ident.span(),
                "#[derive(Event)] needs a struct with named fields, not a union",
            ))
        }
    };
    if let Some(param) = input
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, GenericParam::Lifetime(_)))
    {
        return Err(syn::Error::new(
            param.span(),
            "#[derive(Event)] does not support type or const parameters (lifetimes are fine)",
        ));
    }

    let container = Container::parse(&input.attrs)?;
    let mut readable = Vec::new();
    let mut seen = HashSet::new();
    // The field marked `#[cepheid(time)]`: how to reach it, its type's span.
    let mut time: Option<(&syn::Ident, Span)> = None;
    for field in fields {
        let member = Member::parse(&field.attrs, &["rename", "skip", "flatten", "time"])?;
        let access = field.ident.as_ref().expect("named fields have names");
        if member.time {
            if let Some((first, _)) = time {
                return Err(syn::Error::new(
                    access.span(),
                    format!(
                        "two fields are marked `#[cepheid(time)]` (`{first}` and `{access}`): an event has one time"
                    ),
                ));
            }
            time = Some((access, field.ty.span()));
        }
        if member.skip {
            continue;
        }
        let name = (!member.flatten).then(|| member.name(access, container.rename_all));
        if let Some(name) = &name {
            if !seen.insert(name.clone()) {
                return Err(syn::Error::new(
                    field.span(),
                    format!("two fields are named `{name}`"),
                ));
            }
        }
        let mut static_ty = field.ty.clone();
        StaticLifetimes.visit_type_mut(&mut static_ty);
        readable.push(Field {
            access,
            static_ty,
            name,
            span: field.ty.span(),
        });
    }
    if readable.is_empty() {
        return Err(syn::Error::new(
            ident.span(),
            "#[derive(Event)] needs at least one field that is not skipped",
        ));
    }

    let private = quote!(::cepheid_engine::__derive);
    let fields_ty = format_ident!("__{}Fields", ident);
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let static_args = input.generics.params.iter().map(|_| quote!('static));
    let static_self = if input.generics.params.is_empty() {
        quote!(#ident)
    } else {
        quote!(#ident<#(#static_args),*>)
    };
    let type_name = ident.to_string();

    // Offsets: field i occupies ids offset[i] .. offset[i + 1].
    let offset: Vec<_> = (0..=readable.len())
        .map(|i| format_ident!("__CEPHID_OFFSET_{}", i))
        .collect();
    let offsets = readable.iter().enumerate().map(|(i, f)| {
        let (this, next, ty) = (&offset[i], &offset[i + 1], &f.static_ty);
        quote_spanned! {f.span=>
            const #next: u32 = #this + <#ty as #private::EventField>::WIDTH;
        }
    });
    let first = &offset[0];
    let end = &offset[readable.len()];

    let named_arms = readable.iter().enumerate().filter_map(|(i, f)| {
        let name = f.name.as_ref()?;
        let (this, ty) = (&offset[i], &f.static_ty);
        Some(quote! {
            #name => {
                return <#ty as #private::EventField>::resolve(rest).map(|id| id + #this);
            }
        })
    });
    let flattened = readable.iter().enumerate().filter(|(_, f)| f.name.is_none()).map(|(i, f)| {
        let (this, ty) = (&offset[i], &f.static_ty);
        quote! {
            if let ::core::option::Option::Some(id) = <#ty as #private::EventField>::resolve(path) {
                return ::core::option::Option::Some(id + #this);
            }
        }
    });
    let read_arms = readable.iter().enumerate().map(|(i, f)| {
        let (this, next, access) = (&offset[i], &offset[i + 1], f.access);
        quote_spanned! {f.span=>
            #this..#next => #private::EventField::read(&self.#access, id - #this),
        }
    });
    let read_owned_arms = readable.iter().enumerate().map(|(i, f)| {
        let (this, next, access) = (&offset[i], &offset[i + 1], f.access);
        quote_spanned! {f.span=>
            #this..#next => #private::EventField::read_owned(&self.#access, id - #this),
        }
    });
    let names = readable.iter().map(|f| {
        let ty = &f.static_ty;
        match &f.name {
            Some(name) => quote! {
                <#ty as #private::EventField>::names(&#private::join(prefix, #name), out);
            },
            None => quote! {
                <#ty as #private::EventField>::names(prefix, out);
            },
        }
    });

    let timestamp = time.map(|(access, span)| {
        quote_spanned! {span=>
            #[inline]
            fn timestamp(&self) -> ::core::option::Option<#private::Timestamp> {
                #private::EventTime::event_time(&self.#access)
            }
        }
    });

    Ok(quote! {
        const _: () = {
            /// Resolves the field names of the struct (generated by
            /// `#[derive(Event)]`).
            #[doc(hidden)]
            #[derive(
                ::core::clone::Clone,
                ::core::marker::Copy,
                ::core::fmt::Debug,
                ::core::default::Default,
            )]
            pub struct #fields_ty;

            const #first: u32 = 0;
            #(#offsets)*

            #[automatically_derived]
            impl #impl_generics #private::EventField for #ident #ty_generics #where_clause {
                const WIDTH: u32 = #end;

                fn resolve(path: &[#private::Arc<str>]) -> ::core::option::Option<u32> {
                    if let ::core::option::Option::Some((first, rest)) = path.split_first() {
                        match &**first {
                            #(#named_arms)*
                            _ => {}
                        }
                    }
                    #(#flattened)*
                    ::core::option::Option::None
                }

                #[inline]
                fn read(&self, id: u32) -> #private::ValueRef<'_> {
                    match id {
                        #(#read_arms)*
                        _ => #private::ValueRef::Null,
                    }
                }

                fn read_owned(&self, id: u32) -> #private::Value {
                    match id {
                        #(#read_owned_arms)*
                        _ => #private::Value::Null,
                    }
                }

                fn names(prefix: &str, out: &mut ::std::vec::Vec<::std::string::String>) {
                    #(#names)*
                }
            }

            #[automatically_derived]
            impl #private::FieldResolver for #fields_ty {
                fn resolve(
                    &mut self,
                    path: &#private::FieldPath,
                ) -> ::core::result::Result<#private::FieldId, #private::FieldError> {
                    #private::resolve::<#static_self>(#type_name, path)
                }

                fn known_names(
                    &self,
                ) -> ::core::option::Option<::std::vec::Vec<::std::string::String>> {
                    let mut names = ::std::vec::Vec::new();
                    <#static_self as #private::EventField>::names("", &mut names);
                    ::core::option::Option::Some(names)
                }
            }

            #[automatically_derived]
            impl #impl_generics #private::Event for #ident #ty_generics #where_clause {
                type Fields = #fields_ty;

                #[inline]
                fn field(&self, id: #private::FieldId) -> #private::ValueRef<'_> {
                    #private::EventField::read(self, id.as_u32())
                }

                fn field_owned(&self, id: #private::FieldId) -> #private::Value {
                    #private::EventField::read_owned(self, id.as_u32())
                }

                #timestamp
            }
        };
    })
}

/// Replaces every lifetime with `'static`.
struct StaticLifetimes;

impl VisitMut for StaticLifetimes {
    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        *lifetime = Lifetime::new("'static", lifetime.span());
    }
}
