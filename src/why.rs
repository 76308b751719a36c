//! `cepheid why RULES KEY --events FILE`: for one key, what each pattern
//! did with its events, and why it did not fire (`docs/rule-lab.md`; the
//! lab's `cepheid_lab::why`): its arguments, the report printed.

use std::path::PathBuf;

use crate::EXIT_OK;

/// Arguments of `why`.
#[derive(clap::Args)]
pub struct Args {
    /// The rule set: a `.cep` file or a folder.
    #[arg(value_name = "RULES")]
    rules: PathBuf,
    /// The key: its value (`u-7`, `42`), `field=value,...`, or a JSON
    /// object of the key's fields (`{"user_id": "u-7"}`).
    #[arg(value_name = "KEY", allow_hyphen_values = true)]
    key: String,
    #[command(flatten)]
    events: crate::lab::Events,
    /// One JSON document instead of the text.
    #[arg(long)]
    json: bool,
    /// Keep the events' values out of the output: times, stages and
    /// conditions only.
    #[arg(long)]
    no_events: bool,
    /// As `run --max-runs-per-key`.
    #[arg(long, value_name = "N")]
    max_runs_per_key: Option<usize>,
    /// As `run --max-live-runs`.
    #[arg(long, value_name = "N")]
    max_live_runs: Option<usize>,
}

/// Runs `why` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    let mut options =
        cepheid_lab::why::Options::new(args.rules.clone(), args.key.clone(), args.events.lab());
    options.no_events = args.no_events;
    options.max_runs_per_key = args.max_runs_per_key;
    options.max_live_runs = args.max_live_runs;
    let why = match cepheid_lab::why::run(&options) {
        Ok(why) => why,
        Err(e) => return crate::lab::failed(&e),
    };
    match args.json {
        true => crate::lab::print(&why.json(), true, EXIT_OK),
        false => crate::lab::print(&why.text(), false, EXIT_OK),
    }
}
