//! `#[derive(EventValue)]`: a unit-only enum reads as its variant's name, a
//! newtype as what it wraps.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Member as FieldMember};

use crate::attrs::{Container, Member};

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    match &input.data {
        Data::Enum(data) => expand_enum(input, data),
        Data::Struct(data) => expand_newtype(input, &data.fields),
        Data::Union(_) => Err(syn::Error::new(
            input.ident.span(),
            "#[derive(EventValue)] needs an enum whose variants have no fields, or a struct with one field",
        )),
    }
}

fn expand_enum(input: &DeriveInput, data: &syn::DataEnum) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let container = Container::parse(&input.attrs)?;
    let mut arms = Vec::new();
    let mut seen = HashSet::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(syn::Error::new(
                variant.span(),
                format!(
                    "#[derive(EventValue)] reads an enum as its variant's name, so variants cannot have fields; `{}` has some",
                    variant.ident
                ),
            ));
        }
        let member = Member::parse(&variant.attrs, &["rename"])?;
        let name = member.name(&variant.ident, container.rename_all);
        if !seen.insert(name.clone()) {
            return Err(syn::Error::new(
                variant.span(),
                format!("two variants are named `{name}`"),
            ));
        }
        let variant = &variant.ident;
        arms.push(quote!(#ident::#variant => #name,));
    }
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::cepheid_engine::__derive::EventValue for #ident #ty_generics #where_clause {
            #[inline]
            fn value_ref(&self) -> ::cepheid_engine::__derive::ValueRef<'_> {
                ::cepheid_engine::__derive::ValueRef::Str(match *self {
                    #(#arms)*
                })
            }
        }
    })
}

fn expand_newtype(input: &DeriveInput, fields: &Fields) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let mut iter = fields.iter();
    let (Some(field), None) = (iter.next(), iter.next()) else {
        return Err(syn::Error::new(
            ident.span(),
            "#[derive(EventValue)] on a struct needs exactly one field (a newtype), which it reads as",
        ));
    };
    let access = match &field.ident {
        Some(name) => FieldMember::Named(name.clone()),
        None => FieldMember::Unnamed(0.into()),
    };
    let ty = &field.ty;
    let mut generics = input.generics.clone();
    if !generics
        .params
        .iter()
        .all(|p| matches!(p, syn::GenericParam::Lifetime(_)))
    {
        generics
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(#ty: ::cepheid_engine::__derive::EventValue));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let value_ref = quote_spanned! {ty.span()=>
        ::cepheid_engine::__derive::EventValue::value_ref(&self.#access)
    };
    let to_value = quote_spanned! {ty.span()=>
        ::cepheid_engine::__derive::EventValue::to_value(&self.#access)
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::cepheid_engine::__derive::EventValue for #ident #ty_generics #where_clause {
            #[inline]
            fn value_ref(&self) -> ::cepheid_engine::__derive::ValueRef<'_> {
                #value_ref
            }

            fn to_value(&self) -> ::cepheid_engine::__derive::Value {
                #to_value
            }
        }
    })
}
