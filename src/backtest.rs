//! `cepheid backtest RULES --events FILE [--labels FILE]`: what a rule set
//! would have raised over past events, per pattern (`docs/rule-lab.md`;
//! the lab's `cepheid_lab::backtest`): its arguments, the report printed,
//! the page written.

use std::path::PathBuf;

use cepheid_core::time::parse_duration;

use crate::{EXIT_IO, EXIT_OK};

/// Arguments of `backtest`.
#[derive(clap::Args)]
pub struct Args {
    /// The rule set: a `.cep` file or a folder.
    #[arg(value_name = "RULES")]
    rules: PathBuf,
    #[command(flatten)]
    events: crate::lab::Events,
    /// The cases known to be real: JSON lines `{"key": K, "ts": T}` (K a
    /// key's value, or an object of the key's fields; T milliseconds or an
    /// RFC 3339 time) or CSV `key,ts` (a header allowed).
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// How far outside an alert's span a label's time may be and still be
    /// caught by it.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0ms",
        value_parser = parse_duration
    )]
    tolerance: i64,
    /// One JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the report as one self-contained HTML page (no network:
    /// its script, style and plots inline), with a plot of each pattern's
    /// alerts over event time.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Leave the matched events' values (`events`, `select`, `reads`) out
    /// of everything the report shows (the page's first alerts of each
    /// pattern): for a report others read.
    #[arg(long)]
    no_events: bool,
    /// A service's log only (wal:DIR): keep the replay's alerts in FILE,
    /// as the service wrote them (the records of `shadow` patterns beside
    /// it, in FILE with the extension `shadow.jsonl`); without it they
    /// are not kept.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs `backtest` and returns the exit status.
pub fn run(args: &Args) -> u8 {
    if let Some(dir) = args.events.wal() {
        return replay(args, &dir);
    }
    if let Some(status) = args.events.checkpoint_not_taken() {
        return status;
    }
    if args.output.is_some() {
        say!(
            "error: --output: only a service's log (--events wal:DIR) has its alerts written again; `cepheid run RULES --events {} --output FILE` writes those of a file",
            args.events.path().display()
        );
        return crate::EXIT_USAGE;
    }
    let mut options = cepheid_lab::backtest::Options::new(args.rules.clone(), args.events.lab());
    options.labels.clone_from(&args.labels);
    options.tolerance = args.tolerance;
    options.page = args.html.is_some();
    options.no_events = args.no_events;
    if let Err(e) = options
        .events
        .check("backtest reads the events from a file")
    {
        return crate::lab::failed(&e);
    }
    // (the page's file opened first: a path it cannot be written at is
    // said before the run, not after it)
    let page = match &args.html {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some((path, file)),
            Err(e) => {
                say!("error: cannot write {}: {e}", path.display());
                return EXIT_IO;
            }
        },
        None => None,
    };
    let backtest = match cepheid_lab::backtest::run(&options) {
        Ok(backtest) => backtest,
        Err(e) => return crate::lab::failed(&e),
    };
    // (a closed standard output, `| head`, still has the page written)
    let status = match args.json {
        true => crate::lab::print(&backtest.json(), true, EXIT_OK),
        false => crate::lab::print(&backtest.text(), false, EXIT_OK),
    };
    if let Some((path, file)) = page {
        let page = backtest.page();
        let mut file = file;
        if let Err(e) = std::io::Write::write_all(&mut file, page.as_bytes()) {
            say!("error: cannot write {}: {e}", path.display());
            return EXIT_IO;
        }
    }
    status
}

/// `backtest RULES --events wal:DIR`: the log of `cepheid serve` read
/// again with `RULES` from its first entry kept (or, with
/// `--from-checkpoint`, after that checkpoint of the service's), each
/// decision request's answer printed as the service gave it, a JSON line
/// (`docs/serve.md`, "Live equals backtest"); the alerts are kept in the
/// file `--output` names, and not kept without it.
#[cfg(feature = "serve")]
fn replay(args: &Args, dir: &std::path::Path) -> u8 {
    use std::io::Write;
    let not_taken = match (&args.labels, &args.html) {
        (Some(_), _) => Some("--labels"),
        (_, Some(_)) => Some("--html"),
        _ => args.events.not_for_wal(),
    };
    if let Some(flag) = not_taken {
        say!(
            "error: {flag}: a service's log (wal:{}) is read as the service took it, on one engine, with its own rules and lists, and its answers printed",
            dir.display()
        );
        return crate::EXIT_USAGE;
    }
    let paths = vec![args.rules.clone()];
    let (loaded, checked) = match crate::load_checked(&paths) {
        Ok(loaded) => loaded,
        Err(status) => return status,
    };
    let Ok(rules) = cepheid_engine::Rules::from_checked(loaded, checked) else {
        // (said already by the load)
        return crate::EXIT_PATTERN_ERROR;
    };
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let printer = std::thread::spawn(move || {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for line in rx {
            if out.write_all(&line).is_err() {
                return false;
            }
        }
        out.flush().is_ok()
    });
    let scratch = std::env::temp_dir().join(format!("cepheid-replay-{}.jsonl", std::process::id()));
    let alerts = args.output.clone().unwrap_or_else(|| scratch.clone());
    let result = cepheid_serve::service::replay(
        &rules,
        paths,
        (dir, args.events.start_checkpoint()),
        (alerts.clone(), None),
        tx,
        Box::new(cepheid_runtime::StderrReport),
    );
    if args.output.is_none() {
        let _ = std::fs::remove_file(&scratch);
        // (and the shadow patterns' records the replay writes beside them)
        let _ = std::fs::remove_file(scratch.with_extension("shadow.jsonl"));
    }
    let printed = printer.join().unwrap_or(false);
    match result {
        Ok(summary) if summary.error().is_none() && printed => EXIT_OK,
        Ok(summary) => {
            say!("{summary}");
            EXIT_IO
        }
        Err(e) => {
            say!("{e}");
            EXIT_IO
        }
    }
}

/// Without the feature `serve`: a log cannot be read.
#[cfg(not(feature = "serve"))]
fn replay(_: &Args, dir: &std::path::Path) -> u8 {
    say!(
        "error: wal:{} is a service's log; this cepheid was built without the feature `serve`",
        dir.display()
    );
    crate::EXIT_USAGE
}
