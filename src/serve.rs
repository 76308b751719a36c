//! `cepheid serve`: the decision service (issue 63, `docs/serve.md`).
//! Requests over HTTP (`docs/api/openapi.yaml`), logged before they are
//! answered, decided by one engine at once; its state in `--state`, its
//! alerts and decisions in files as `cepheid run` writes them, or Kafka
//! topics written exactly once with its checkpoints (`--output
//! kafka://...`: the runtime's transactional sink, opened here as `run`
//! opens it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_serve::http::{FrontOptions, TlsFiles};
use cepheid_serve::service::{Service, ServiceOptions};
use cepheid_serve::wal::FsyncPolicy;
use clap::Parser;

use crate::{EXIT_IO, EXIT_OK, EXIT_USAGE};

/// `cepheid serve RULES... --state DIR [--listen ADDR]`.
#[derive(Parser, Debug)]
pub struct Args {
    /// Pattern files or folders: the rules and the scenes they decide.
    #[arg(required = true, value_name = "RULES")]
    patterns: Vec<PathBuf>,
    /// Where to listen (`127.0.0.1:0`: a free port; the address taken is
    /// printed on standard output).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8870")]
    listen: SocketAddr,
    /// The service's state: its log (`log/`) and checkpoints
    /// (`checkpoints/`); a restart goes on from it.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Where alerts go (default `STATE/alerts.jsonl`); `kafka://HOST:PORT/TOPIC`
    /// a Kafka topic, written exactly once in a transaction per
    /// checkpoint (then --decisions is a topic too; docs/serve.md,
    /// "Kafka outputs").
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Where every decision goes (default `STATE/decisions.jsonl`); with
    /// --output kafka://..., a topic on its brokers (kafka://HOST:PORT/TOPIC,
    /// in the output's transactions).
    #[arg(long, value_name = "FILE")]
    decisions: Option<PathBuf>,
    /// Where the records of `shadow` patterns go, never among the alerts
    /// (default `STATE/shadow.jsonl`); a request taken under load has its
    /// shadow rules shed (`shadow_shed`)
    #[arg(long, value_name = "FILE")]
    shadow_output: Option<PathBuf>,
    /// Where the audit record of each change of rules goes, applied or
    /// refused, at its place in the log (default `STATE/audit.jsonl`);
    /// with --output kafka://..., a topic on its brokers
    /// (kafka://HOST:PORT/TOPIC, in the output's transactions), and none
    /// unless given
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// When a request's log entry is made durable before its answer:
    /// `always` (each group commit synced before any answer, the
    /// default), a duration (`10ms`: answers before the sync, synced at
    /// least that often; a power cut loses at most that much), `never`
    /// (the operating system decides).
    #[arg(long, value_name = "POLICY", default_value = "always", value_parser = parse_fsync)]
    fsync: FsyncPolicy,
    /// How long a request is remembered: a retry with its event id gets
    /// the same answer and counts once; `GET /v1/decisions/{id}` finds it.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    retention: Duration,
    /// The most requests remembered within the retention (past it the
    /// oldest are forgotten early, counted on `/metrics`).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    remember: usize,
    /// The most requests in flight; past it a 429 with `Retry-After` (`0`:
    /// every request a 503, to drain a service)
    #[arg(long, value_name = "N", default_value_t = 4096)]
    queue: usize,
    /// How often the state is checkpointed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    checkpoint_every: Duration,
    /// How often the clock ticks on a quiet service (logged), so that
    /// timeouts fire.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    tick: Duration,
    /// Bearer tokens, one per line: every endpoint asks for one.
    /// Required to listen on another address than loopback.
    #[arg(long, value_name = "FILE")]
    auth_tokens: Option<PathBuf>,
    /// TLS: the certificate chain (PEM); with `--tls-key`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS: the private key (PEM); with `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_body: usize,
    /// Read the rules again when their files change: the new rules are
    /// logged, then applied (every answer names the version that made it).
    #[arg(long)]
    watch: bool,
    /// A reference list fed by a file, as `run --list` (repeatable):
    /// read at the start and, with `--watch`, when it changes; or by a
    /// Kafka topic (NAME=kafka://HOST:PORT/TOPIC: its key the entry, a
    /// tombstone a removal). What it changes goes through the log
    /// (`docs/serve.md`, "Lists", "Lists' topics").
    #[arg(long = "list", value_name = "NAME=PATH", value_parser = cepheid_runtime::lists::ListFile::parse)]
    lists: Vec<cepheid_runtime::lists::ListFile>,
    /// Threads answering HTTP [default: 2, or 1 where the process may
    /// run on one core only].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// A topic of rule sets (kafka://HOST:PORT/TOPIC, its partition 0):
    /// each `{"$rules": TEXT}` record is logged as a change of rules, then
    /// applied (docs/serve.md, "A rules topic"); read from the record
    /// after the last one logged. With --kafka's properties.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "URL")]
    rules_topic: Option<PathBuf>,
    /// Topics of events (kafka://HOST:PORT/TOPIC[,TOPIC...], every
    /// partition): each record, a JSON object of an event's fields, is
    /// logged as an event of no scene (as `POST /v1/events` records one)
    /// and feeds the indicators, lists and sequences; read from each
    /// partition's first record, then from the record after the last one
    /// logged (docs/serve.md, "Events topics"). With --kafka's properties.
    #[cfg(feature = "kafka")]
    #[arg(long, value_name = "URL")]
    events_topic: Option<PathBuf>,
    /// The Kafka options (with --output kafka://..., --rules-topic or
    /// --events-topic).
    #[cfg(feature = "kafka")]
    #[command(flatten)]
    kafka: crate::run::kafka::SinkArgs,
}

fn is_kafka(path: Option<&PathBuf>) -> bool {
    path.and_then(|p| p.to_str())
        .is_some_and(|p| p.starts_with("kafka://"))
}

/// Refusals of the outputs' flags before anything starts (exit 2).
fn check_outputs(args: &Args) -> Result<(), String> {
    let named = [
        ("--output", args.output.as_ref()),
        ("--decisions", args.decisions.as_ref()),
        ("--shadow-output", args.shadow_output.as_ref()),
        ("--audit", args.audit.as_ref()),
    ];
    if cfg!(not(feature = "kafka")) {
        if let Some((flag, _)) = named.iter().find(|(_, p)| is_kafka(*p)) {
            return Err(format!(
                "error: {flag} kafka://...: this cepheid was built without the feature `kafka`"
            ));
        }
    }
    // (every decision goes to the outputs: a Kafka output whose decisions
    // would go to a file out of its transactions is refused, as the
    // reverse is by `KafkaOptions::check`)
    if is_kafka(args.output.as_ref()) && !is_kafka(args.decisions.as_ref()) {
        return Err("error: --output kafka://... needs --decisions kafka://... (every decision goes to the outputs, in the output's transactions)".into());
    }
    Ok(())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let ms = cepheid_core::time::parse_duration(text).map_err(|e| e.to_string())?;
    Ok(Duration::from_millis(ms.max(0) as u64))
}

fn parse_fsync(text: &str) -> Result<FsyncPolicy, String> {
    match text {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        other => {
            let every = parse_duration(other).map_err(|e| {
                format!("{e} (the policy is `always`, `never` or a duration such as `10ms`)")
            })?;
            if every.is_zero() {
                return Err("a sync interval of 0 is `always`".into());
            }
            Ok(FsyncPolicy::Interval(every))
        }
    }
}

pub fn run(args: &Args) -> u8 {
    let (loaded, checked) = match crate::load_checked(&args.patterns) {
        Ok(loaded) => loaded,
        Err(status) => return status,
    };
    let Ok(rules) = cepheid_engine::Rules::from_checked(loaded, checked) else {
        // (said already by the load)
        return crate::EXIT_PATTERN_ERROR;
    };
    if let Err(why) = check_outputs(args) {
        say!("{why}");
        return EXIT_USAGE;
    }
    let mut options = ServiceOptions::new(&args.state);
    options.fsync = args.fsync;
    options.retention = args.retention;
    options.remember = args.remember;
    options.queue = args.queue;
    options.checkpoint_every = args.checkpoint_every;
    options.tick_every = args.tick;
    options.output.clone_from(&args.output);
    options.decisions.clone_from(&args.decisions);
    options.shadow_output.clone_from(&args.shadow_output);
    options.audit.clone_from(&args.audit);
    options.watch = args.watch;
    #[cfg(feature = "kafka")]
    {
        options.rules_topic = args.rules_topic.is_some();
    }
    // (a list's topic, `--list NAME=kafka://...`, is read into the log by
    // a reader of its own below; a file, by the service)
    options.lists = (args.lists.iter())
        .filter(|l| !is_kafka(Some(&l.path)))
        .cloned()
        .collect();
    let front_options = FrontOptions {
        listen: args.listen,
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        auth_tokens: args.auth_tokens.clone(),
        max_body_bytes: args.max_body,
        threads: args
            .threads
            .map_or_else(cepheid_serve::http::default_threads, |n| n.max(1)),
        ..FrontOptions::default()
    };
    // (refused before anything starts: a non-loopback address without
    // tokens)
    if front_options.auth_tokens.is_none() && !front_options.listen.ip().is_loopback() {
        say!(
            "{}",
            cepheid_serve::http::StartError::OpenWithoutTokens(front_options.listen)
        );
        return EXIT_USAGE;
    }
    // The rules topic (--rules-topic), opened before anything is served:
    // a mistake, an unknown topic or a broker that does not answer stops
    // the command here (exit 2, 6).
    #[cfg(feature = "kafka")]
    let rules_topic = match &args.rules_topic {
        Some(url) => match crate::run::kafka::RulesTopic::open(url, &args.kafka) {
            Ok(topic) => Some(topic),
            Err((status, said)) => {
                say!("{said}");
                return status;
            }
        },
        None => None,
    };
    // (and the lists' topics: each list declared by the rules)
    #[cfg(feature = "kafka")]
    let mut list_topics = Vec::new();
    #[cfg(feature = "kafka")]
    for list in args.lists.iter().filter(|l| is_kafka(Some(&l.path))) {
        let declared = &rules.loaded().declarations.lists;
        if !declared.iter().any(|l| *l.name == list.list) {
            say!(
                "error: --list {}={}: the rules declare no list `{}` (`list {}`)",
                list.list,
                list.path.display(),
                list.list,
                list.list
            );
            return EXIT_USAGE;
        }
        match crate::run::kafka::ListTopic::open(&list.list, &list.path, &args.kafka) {
            Ok(topic) => list_topics.push(topic),
            Err((status, said)) => {
                say!("{said}");
                return status;
            }
        }
    }
    // (and the events topics, alike)
    #[cfg(feature = "kafka")]
    let events_topic = match &args.events_topic {
        Some(url) => match crate::run::kafka::EventsTopic::open(url, &args.kafka) {
            Ok(topic) => Some(topic),
            Err((status, said)) => {
                say!("{said}");
                return status;
            }
        },
        None => None,
    };
    let signals = Arc::new(Mutex::new(None::<i32>));
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<i32>();
    let heard = Arc::clone(&signals);
    if let Err(e) = crate::signals::install(
        move |signal| {
            *heard.lock().unwrap_or_else(|p| p.into_inner()) = Some(signal);
            let _ = stop_tx.send(signal);
        },
        false,
    ) {
        say!("warning: cannot handle SIGINT and SIGTERM ({e}); they end the service at once");
    }
    // The Kafka sink (--output kafka://...), opened from the service's
    // run config as `cepheid run` opens its own: its flags checked (exit
    // 2), the broker waited for up to --kafka-timeout (exit 6).
    let mut status = EXIT_IO;
    let started = {
        #[cfg(feature = "kafka")]
        let mut open = |config: &mut cepheid_runtime::Config| {
            use cepheid_serve::service::StartError;
            let topics = [
                &args.output,
                &args.decisions,
                &args.shadow_output,
                &args.audit,
            ];
            if !topics.iter().any(|p| is_kafka(p.as_ref())) {
                return Ok(None);
            }
            if args.shadow_output.is_none() {
                // (the default file cannot be in the topic's
                // transactions: shadow records need --shadow-output
                // kafka://...)
                config.shadow_output = None;
            }
            if args.audit.is_none() {
                // (nor the audit records: --audit kafka://...)
                config.audit = None;
            }
            let kafka = args.kafka.options();
            // (checked as a run of its sink alone: the service's record
            // time is its log's, a source of its own, which
            // `KafkaOptions::check` takes for `--time kafka` without a
            // Kafka source)
            let time = std::mem::replace(&mut config.time, cepheid_runtime::Time::Processing);
            let checked = kafka.check(config);
            config.time = time;
            if let Err(why) = checked {
                status = EXIT_USAGE;
                return Err(StartError(format!(
                    "error: {}",
                    crate::run::in_flags(&why.to_string())
                )));
            }
            kafka.open_sink(config).map_err(|e| {
                status = crate::run::kafka::status_of(&e);
                let said = crate::run::in_flags(&e.to_string()).into_owned();
                if e.is_unreachable() {
                    // (the broker named: the operator's URL)
                    let url = (args.output.as_ref())
                        .map_or_else(String::new, |p| p.display().to_string());
                    return StartError(format!("error: --output {url}: {said}"));
                }
                StartError(format!("error: {said}"))
            })
        };
        #[cfg(not(feature = "kafka"))]
        let mut open = |_: &mut cepheid_runtime::Config| Ok(None);
        Service::start_with_sink(
            &rules,
            args.patterns.clone(),
            &options,
            Box::new(cepheid_runtime::StderrReport),
            &mut open,
        )
    };
    let service = match started {
        Ok(service) => service,
        Err(e) => {
            say!("{e}");
            return status;
        }
    };
    let front = match cepheid_serve::http::start(front_options, service.decider()) {
        Ok(front) => front,
        Err(e) => {
            say!("{e}");
            let _ = service.stop("the listener could not start");
            return EXIT_IO;
        }
    };
    // (read once the service has read its log again: from the record
    // after the last one logged)
    let stop_topic = Arc::new(std::sync::atomic::AtomicBool::new(false));
    #[cfg(feature = "kafka")]
    let topic_reader = match rules_topic {
        Some(topic) => match topic.spawn(service.rules_feed(), Arc::clone(&stop_topic)) {
            Ok(reader) => Some(reader),
            Err(e) => {
                say!("error: --rules-topic: cannot start its reader: {e}");
                front.shutdown();
                front.join();
                let _ = service.stop("the rules topic's reader could not start");
                return EXIT_IO;
            }
        },
        None => None,
    };
    #[cfg(feature = "kafka")]
    let events_reader = match events_topic {
        Some(topic) => match topic.spawn(service.events_feed(), Arc::clone(&stop_topic)) {
            Ok(reader) => Some(reader),
            Err(e) => {
                say!("error: --events-topic: cannot start its reader: {e}");
                stop_topic.store(true, std::sync::atomic::Ordering::Release);
                front.shutdown();
                front.join();
                let _ = service.stop("the events topic's reader could not start");
                return EXIT_IO;
            }
        },
        None => None,
    };
    #[cfg(feature = "kafka")]
    let mut list_readers = Vec::new();
    #[cfg(feature = "kafka")]
    for topic in list_topics {
        match topic.spawn(service.events_feed(), Arc::clone(&stop_topic)) {
            Ok(reader) => list_readers.push(reader),
            Err(e) => {
                say!("error: --list: cannot start a list topic's reader: {e}");
                stop_topic.store(true, std::sync::atomic::Ordering::Release);
                front.shutdown();
                front.join();
                let _ = service.stop("a list topic's reader could not start");
                return EXIT_IO;
            }
        }
    }
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "cepheid serve: listening on {scheme}://{}",
        front.local_addr()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Until SIGINT or SIGTERM: the front stops taking requests and
    // finishes those under way, then the run takes what the log holds,
    // checkpoints and ends.
    let signal = stop_rx.recv().unwrap_or(0);
    front.shutdown();
    front.join();
    stop_topic.store(true, std::sync::atomic::Ordering::Release);
    #[cfg(feature = "kafka")]
    if let Some(reader) = topic_reader {
        let _ = reader.join();
    }
    #[cfg(feature = "kafka")]
    if let Some(reader) = events_reader {
        let _ = reader.join();
    }
    #[cfg(feature = "kafka")]
    for reader in list_readers {
        let _ = reader.join();
    }
    let summary = service.stop(crate::signals::name(signal));
    if let Some(summary) = summary {
        say!("{summary}");
        if let Some(error) = summary.error() {
            // (a Kafka sink's: 6 unreachable, 7 fenced, as `cepheid run`)
            #[cfg(feature = "kafka")]
            if let Some(status) = crate::run::kafka::status(error) {
                return status;
            }
            let _ = error;
            return EXIT_IO;
        }
    }
    let _ = signals;
    EXIT_OK
}
