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
    #[arg(
        value_name = "KEY",
        allow_hyphen_values = true,
        required_unless_present = "event"
    )]
    key: Option<String>,
    /// Instead of a key, one event: how each scene it entered came to its
    /// outcome, rule by rule. Its id as its decisions name it: its scene's
    /// `id` field (`p4`), or its position (`events.jsonl:12`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["key", "from", "to", "patterns", "no_events", "max_runs_per_key", "max_live_runs"])]
    event: Option<String>,
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
    /// Show only what happened from this time on (RFC 3339, or
    /// milliseconds since the epoch): the rules still run over every
    /// event, the events keep their numbers.
    #[arg(long, value_name = "TIME", value_parser = cepheid_lab::why::parse_time, allow_hyphen_values = true)]
    from: Option<i64>,
    /// Show only what happened up to this time (RFC 3339, or
    /// milliseconds since the epoch), this time included.
    #[arg(long, value_name = "TIME", value_parser = cepheid_lab::why::parse_time, allow_hyphen_values = true)]
    to: Option<i64>,
    /// Show only this pattern (repeatable).
    #[arg(long = "pattern", value_name = "NAME")]
    patterns: Vec<String>,
}

/// Runs `why` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    if let Some(event) = &args.event {
        let options =
            cepheid_lab::why::event::Options::new(args.rules.clone(), event, args.events.lab());
        return match cepheid_lab::why::event::run(&options) {
            Ok(why) if args.json => crate::lab::print(&why.json(), true, EXIT_OK),
            Ok(why) => crate::lab::print(&why.text(), false, EXIT_OK),
            Err(e) => crate::lab::failed(&e),
        };
    }
    let key = args.key.clone().unwrap_or_default();
    let mut options = cepheid_lab::why::Options::new(args.rules.clone(), key, args.events.lab());
    options.no_events = args.no_events;
    options.max_runs_per_key = args.max_runs_per_key;
    options.max_live_runs = args.max_live_runs;
    options.from = args.from;
    options.to = args.to;
    options.patterns.clone_from(&args.patterns);
    let why = match cepheid_lab::why::run(&options) {
        Ok(why) => why,
        Err(e) => return crate::lab::failed(&e),
    };
    match args.json {
        true => crate::lab::print(&why.json(), true, EXIT_OK),
        false => crate::lab::print(&why.text(), false, EXIT_OK),
    }
}
