//! `cepheid explain PATTERNS... [--pattern NAME] [--dot]`: each pattern as
//! readable text (doc, clauses, stages, the element tree, then the compiled
//! NFA's states and transitions), or with `--dot` as a Graphviz graph of the
//! compiled NFA.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use cepheid_automata::nfa::Nfa;
use cepheid_core::record::{FieldTable, Record};

use crate::{EXIT_IO, EXIT_OK, EXIT_PATTERN_ERROR, EXIT_USAGE};

/// Arguments of `explain`.
#[derive(clap::Args)]
pub struct Args {
    /// Pattern files or folders (every `*.cep` inside, sorted by name).
    #[arg(required = true, value_name = "PATTERNS")]
    paths: Vec<PathBuf>,
    /// Only the pattern with this name.
    #[arg(long, value_name = "NAME")]
    pattern: Option<String>,
    /// Print a Graphviz `dot` graph instead of text.
    #[arg(long)]
    dot: bool,
}

/// Runs `explain` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    let loaded = match crate::load(&args.paths) {
        Ok(loaded) => loaded,
        Err(status) => return status,
    };
    let selected: Vec<_> = loaded
        .patterns
        .iter()
        .filter(|p| args.pattern.as_ref().is_none_or(|name| &p.name == name))
        .collect();
    if let (Some(name), true) = (&args.pattern, selected.is_empty()) {
        let names: Vec<&str> = loaded.patterns.iter().map(|p| p.name.as_str()).collect();
        say!(
            "error: no pattern named `{name}` (patterns: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return EXIT_USAGE;
    }
    let mut status = EXIT_OK;
    let mut out = String::new();
    for (i, p) in selected.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let nfa = match Nfa::<Record>::compile(p, &mut FieldTable::new()) {
            Ok(nfa) => nfa,
            Err(e) => {
                say!("error: pattern `{}` does not compile: {e}", p.name);
                status = EXIT_PATTERN_ERROR;
                continue;
            }
        };
        if args.dot {
            out.push_str(&nfa.to_dot());
        } else {
            out.push_str(&cepheid_syntax::explain(p));
            out.push_str("  automaton:\n");
            for line in nfa.explain().lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    // A reader that stopped early (`| head`) is not an error, as for `run`;
    // `print!` would panic on it.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => status,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            say!("error: cannot write standard output: {e}");
            EXIT_IO
        }
    }
}
