//! The `#[cepheid(...)]` attributes.

use heck::{ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use syn::{Attribute, Ident, LitStr};

/// `rename_all` on a struct or an enum.
#[derive(Clone, Copy)]
pub enum RenameAll {
    Lower,
    Upper,
    Camel,
    Pascal,
    Snake,
    ScreamingSnake,
    Kebab,
}

impl RenameAll {
    const NAMES: &'static str =
        "lowercase, UPPERCASE, camelCase, PascalCase, snake_case, SCREAMING_SNAKE_CASE, kebab-case";

    fn parse(lit: &LitStr) -> syn::Result<RenameAll> {
        Ok(match lit.value().as_str() {
            "lowercase" => RenameAll::Lower,
            "UPPERCASE" => RenameAll::Upper,
            "camelCase" => RenameAll::Camel,
            "PascalCase" => RenameAll::Pascal,
            "snake_case" => RenameAll::Snake,
            "SCREAMING_SNAKE_CASE" => RenameAll::ScreamingSnake,
            "kebab-case" => RenameAll::Kebab,
            other => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown rename_all rule `{other}`; expected one of {}",
                        Self::NAMES
                    ),
                ))
            }
        })
    }

    /// Applies the rule to a Rust name (a field in snake_case, a variant in
    /// PascalCase).
    pub fn apply(self, name: &str) -> String {
        match self {
            RenameAll::Lower => name.to_lowercase(),
            RenameAll::Upper => name.to_uppercase(),
            RenameAll::Camel => name.to_lower_camel_case(),
            RenameAll::Pascal => name.to_upper_camel_case(),
            RenameAll::Snake => name.to_snake_case(),
            RenameAll::ScreamingSnake => name.to_shouty_snake_case(),
            RenameAll::Kebab => name.to_kebab_case(),
        }
    }
}

/// The attributes of a struct or an enum.
#[derive(Default)]
pub struct Container {
    pub rename_all: Option<RenameAll>,
}

impl Container {
    pub fn parse(attrs: &[Attribute]) -> syn::Result<Container> {
        let mut out = Container::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("cepheid")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    out.rename_all = Some(RenameAll::parse(&meta.value()?.parse()?)?);
                    Ok(())
                } else {
                    Err(meta
                        .error("unknown cepheid attribute here; expected `rename_all = \"...\"`"))
                }
            })?;
        }
        Ok(out)
    }
}

/// The attributes of a field or a variant.
#[derive(Default)]
pub struct Member {
    pub rename: Option<LitStr>,
    pub skip: bool,
    pub flatten: bool,
    /// `#[cepheid(time)]`: the field is the event's time.
    pub time: bool,
}

impl Member {
    /// Parses the attributes; `allowed` are the ones this kind of member
    /// takes (`rename`, `skip`, `flatten`, `time`).
    pub fn parse(attrs: &[Attribute], allowed: &[&str]) -> syn::Result<Member> {
        let mut out = Member::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("cepheid")) {
            attr.parse_nested_meta(|meta| {
                let name = meta
                    .path
                    .get_ident()
                    .map(Ident::to_string)
                    .unwrap_or_default();
                if !allowed.contains(&name.as_str()) {
                    let expected: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                    return Err(meta.error(format!(
                        "unknown cepheid attribute here; expected {}",
                        expected.join(" or ")
                    )));
                }
                match name.as_str() {
                    "rename" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        let value = lit.value();
                        if value.is_empty() || value.contains('.') {
                            return Err(syn::Error::new(
                                lit.span(),
                                "a field name must be non-empty and without `.` (nest a struct for dotted names)",
                            ));
                        }
                        out.rename = Some(lit);
                    }
                    "skip" => out.skip = true,
                    "time" => out.time = true,
                    _ => out.flatten = true,
                }
                Ok(())
            })?;
        }
        let conflict = if out.skip && (out.flatten || out.rename.is_some()) {
            Some("a skipped field cannot also be renamed or flattened")
        } else if out.flatten && out.rename.is_some() {
            Some("a flattened field has no name of its own to rename")
        } else if out.flatten && out.time {
            Some("a flattened field cannot be the time: mark an integer field of this struct with `#[cepheid(time)]`")
        } else {
            None
        };
        if let (Some(message), Some(attr)) = (
            conflict,
            attrs.iter().find(|a| a.path().is_ident("cepheid")),
        ) {
            return Err(syn::Error::new_spanned(attr, message));
        }
        Ok(out)
    }

    /// The name patterns use for a member called `ident` in Rust.
    pub fn name(&self, ident: &Ident, rule: Option<RenameAll>) -> String {
        use syn::ext::IdentExt;
        if let Some(lit) = &self.rename {
            return lit.value();
        }
        let rust = ident.unraw().to_string();
        match rule {
            Some(rule) => rule.apply(&rust),
            None => rust,
        }
    }
}
