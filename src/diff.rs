//! `cepheid diff OLD NEW --events FILE`: the alerts that only one of two
//! rule sets raises over the same events (`docs/rule-lab.md`; the lab's
//! `cepheid_lab::diff`): its arguments, the report printed.

use std::path::PathBuf;

use crate::EXIT_OK;

/// Arguments of `diff`.
#[derive(clap::Args)]
pub struct Args {
    /// The rule set in force: a `.cep` file or a folder.
    #[arg(value_name = "OLD")]
    old: PathBuf,
    /// The rule set to compare with it: a `.cep` file or a folder.
    #[arg(value_name = "NEW")]
    new: PathBuf,
    #[command(flatten)]
    events: crate::lab::Events,
    /// One JSON document instead of the table and the records.
    #[arg(long)]
    json: bool,
    /// Leave the matched events' values out of the records shown
    /// (`events`, `select`, `reads`; their kind, pattern, key and times
    /// stay): for a report others read. The comparison still sees them.
    #[arg(long)]
    no_events: bool,
}

/// Runs `diff` and returns the exit status: 0 whether the sets differ or
/// not (the report says it), 1 when a rule set has errors, 2 for a bad
/// command line, 4 when the events or an output cannot be read or written.
pub fn run(args: &Args) -> u8 {
    if let Some(status) = args.events.checkpoint_not_taken() {
        return status;
    }
    let mut options =
        cepheid_lab::diff::Options::new(args.old.clone(), args.new.clone(), args.events.lab());
    options.no_events = args.no_events;
    let compared = match cepheid_lab::diff::run(&options) {
        Ok(compared) => compared,
        Err(e) => return crate::lab::failed(&e),
    };
    match args.json {
        true => crate::lab::print(&compared.json(), true, EXIT_OK),
        false => crate::lab::print(&compared.text(), false, EXIT_OK),
    }
}
