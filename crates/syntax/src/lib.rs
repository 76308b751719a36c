//! The pattern language: `.cep` text → AST → [`Pattern`] IR, with
//! diagnostics that point at the text.
//!
//! The chain, one module per step:
//!
//! | module | owns |
//! |---|---|
//! | `lex` | tokens as nom 8 parsers, the parser's private error type |
//! | `parse`, `parse_match`, `parse_expr`, `parse_decl`, `parse_scene` | the grammar of `language.md`, error recovery |
//! | [`ast`] | the syntax tree, a [`Span`] on every node |
//! | `print` | the canonical printer: `parse(print(ast)) == ast` |
//! | `lower`, `lower_expr`, `lower_decl` | AST → IR, name resolution, language-only checks |
//! | `factor`, `param` | factors (written out where they are called), parameters and their types |
//! | `template`, `scene_lower` | rules with parameters made once per scene (`rule@scene`), scenes → [`scene::Scene`] |
//! | [`diagnostic`] | [`Diagnostic`] values and their rendering |
//! | `load` | text, bytes, files and folders → [`Loaded`] |
//! | `explain`, `scene_explain` | the IR as readable text and as a `dot` graph; a scene as text |
//! | `source` | the IR back to `.cep` text (what a snapshot keeps of each pattern) |
//!
//! ```
//! let loaded = cepheid_syntax::load_str("rules.cep", r#"
//!     /// Three failed logins for one user within 10 seconds.
//!     pattern brute_force {
//!         partition by user_id
//!         within 10s
//!         match fail{3} consecutive
//!         where fail: type == "login" and not success
//!     }
//! "#);
//! assert!(!loaded.has_errors(), "{}", loaded.render());
//! assert_eq!(loaded.patterns[0].name, "brute_force");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
mod alternation_tests;
pub mod ast;
#[cfg(test)]
mod decl_tests;
pub mod diagnostic;
mod explain;
#[cfg(test)]
mod expr_tests;
mod factor;
mod lex;
mod load;
mod lower;
mod lower_decl;
mod lower_expr;
mod param;
mod parse;
mod parse_decl;
mod parse_expr;
mod parse_match;
mod parse_scene;
mod print;
mod reads;
#[cfg(test)]
mod scene_error_tests;
mod scene_explain;
mod scene_lower;
#[cfg(test)]
mod scene_tests;
mod source;
mod template;

use std::collections::HashMap;

pub use diagnostic::{Diagnostic, DiagnosticKind, Diagnostics, Label, Located, Severity, Source};
pub use explain::{explain, sequence_dot};
pub use factor::{MAX_FACTOR_EXPANSIONS, MAX_FACTOR_NODES};
pub use lex::is_plain_ident;
pub use load::{load_bytes, load_paths, load_str, Loaded, MAX_DIAGNOSTICS_PER_FILE, MAX_FILE_SIZE};
pub use lower_expr::{closest, REGEX_EXPANDED_LIMIT, REGEX_SIZE_LIMIT};
pub use parse::MAX_PATTERNS;
pub use scene_explain::explain_scene;
pub use scene_lower::{MAX_INSTANCES, MAX_OUTCOMES, MAX_SCENE_RULES};

pub use print::print_expr;
pub use print::print_file;
pub use reads::{
    expr_field_reads, field_reads, field_reads_with, FieldRead, ReadClause, MAX_FACTOR_DEPTH,
};
pub use source::{declarations_source, pattern_source, NoSource, NoSourceWhy};

// The vocabulary, under the names the modules use for it.
use cepheid_core::{event, expr, lookup, pattern, primitives, scene, time, value};
#[allow(unused_imports)]
use cepheid_core::{Record, Span};

use crate::expr::Expr;
use crate::pattern::Pattern;
use crate::primitives::StageId;

/// Parses a whole file. Any syntax error makes it an `Err` holding every
/// syntax error found (the parser recovers at the next entry or pattern).
pub fn parse(src: &str) -> Result<ast::File, Diagnostics> {
    parse::parse_strict(src).map_err(|list| Diagnostics::new(list, src))
}

/// Parses a standalone expression (for the builder API's string
/// conditions).
pub fn parse_expression(src: &str) -> Result<ast::Expr, Diagnostics> {
    parse::parse_expression(src).map_err(|list| Diagnostics::new(list, src))
}

/// Lowers a standalone `where`-style expression given the stage names of
/// its pattern (index = [`StageId`]): `s.f` with `s` among them is a stage
/// reference, aggregates need one of them. (The error's line and column
/// are not known here: its `Display` says `0:0`; the spans are the
/// expression's.)
pub fn lower_expression(e: &ast::Expr, stage_names: &[String]) -> Result<Expr, Diagnostics> {
    let stages: HashMap<String, StageId> = stage_names
        .iter()
        .enumerate()
        .rev()
        .map(|(i, n)| (n.clone(), StageId(u16::try_from(i).unwrap_or(u16::MAX))))
        .collect();
    let mut diagnostics = Vec::new();
    let lowered = lower_expr::ExprCx {
        decls: &NO_DECLARATIONS,
        factors: factor::no_factors(),
        params: None,
        budget: factor::MAX_FACTOR_EXPANSIONS,
        in_indicator: false,
        stages: &stages,
        in_select: false,
        diagnostics: &mut diagnostics,
    }
    .lower(e);
    if diagnostics.iter().any(Diagnostic::is_error) {
        Err(Diagnostics::new(diagnostics, ""))
    } else {
        Ok(lowered)
    }
}

/// No list and no indicator: what a standalone expression may name.
static NO_DECLARATIONS: lookup::Declarations = lookup::Declarations {
    lists: Vec::new(),
    indicators: Vec::new(),
};

/// Lowers every pattern of a parsed file (without cross-file checks), the
/// instances its scenes make included; returns the valid patterns and all
/// diagnostics (each in source 0).
pub fn lower_file(file: &ast::File) -> (Vec<Pattern>, Vec<Diagnostic>) {
    let mut loaded = Loaded::default();
    loaded.sources.push(Source::new("<file>", ""));
    loaded.add_parsed(
        0,
        parse::Parsed {
            patterns: file.patterns.iter().map(|p| (p.clone(), false)).collect(),
            declarations: file.declarations.clone(),
            scenes: file.scenes.iter().map(|s| (s.clone(), false)).collect(),
            diagnostics: Vec::new(),
        },
    );
    (loaded.patterns, loaded.diagnostics)
}
