//! `serve-load`: an open-loop load generator for `cepheid serve` (issue 63,
//! BENCHMARKS.md "`cepheid serve` (issue 63)", run by `benches/serve.sh`).
//!
//! ```text
//! serve-load --url http://127.0.0.1:PORT --rate 10000 --duration 20 \
//!     --connections 64 --cards 1000000 [--h2c] [--zero-deadline 0.01] [--json]
//! ```
//!
//! Hand-written because no packaged tool does both things this service
//! needs: every request has its own `event_id` (the service is
//! idempotent: a body sent again is answered from memory, which measures
//! the repeat path, not a decision; `oha` and `wrk` send one fixed body),
//! and the rate is open-loop (requests leave on a fixed schedule, not when
//! an answer came back, and latency is measured from the *scheduled* time,
//! so a server that stalls cannot hide its queue: "coordinated omission";
//! `wrk2` does this but is not packaged here).
//!
//! How: a scheduler thread wakes at each request's scheduled time (or
//! every 100 µs at high rates, handing out every request due) and queues
//! it; `--connections` HTTP/1.1 keep-alive connections (or, with `--h2c`,
//! `--streams` concurrent streams on each HTTP/2 connection, prior
//! knowledge) take the next request when free. A request that waits for a
//! free connection is sent late: the latency counts from its schedule, and
//! the ones sent more than `--late-us` after it are counted "behind
//! schedule" (said, never hidden: the figure then measures the generator
//! or too few connections as much as the server).
//!
//! The events are the `risk` stream of `bench-workloads.md` (issue 60's
//! generator, [`cepheid_bench::risk::event_of`]) with `--cards` cards and
//! half as many devices: `{"type":"payment","card":"c…","device":"d…",
//! "amount":…}` in the scene `--scene` (`payment` of `patterns/risk`).
//!
//! Reports: sent, answered by status, degraded, unanswered, behind
//! schedule, the achieved rate, and p50/p99/p99.9/max of the client's
//! latency (scheduled time to the whole answer read) and of the server's
//! own `elapsed_us` (admission to answer), and this process's CPU time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

#[derive(Parser, Debug, Clone)]
#[command(name = "serve-load", about = "Open-loop load for `cepheid serve`")]
struct Args {
    /// The service's base URL (`http://127.0.0.1:PORT`), as `cepheid serve`
    /// prints it.
    #[arg(long)]
    url: String,
    /// Requests a second (the schedule: request i leaves at start + i/rate).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of schedule.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Connections (HTTP/1.1: one request in flight on each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// HTTP/2 over cleartext (prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    h2c: bool,
    /// With `--h2c`: concurrent streams on each connection.
    #[arg(long, default_value_t = 64)]
    streams: usize,
    /// The scene of every request.
    #[arg(long, default_value = "payment")]
    scene: String,
    /// Cards the events are drawn from (devices: half as many).
    #[arg(long, default_value_t = 1_000_000)]
    cards: u64,
    /// The stream's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The first event of the stream (runs on one state go on from where
    /// the one before stopped).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Event ids read `PREFIX-N` (default: this process's id and start
    /// time, so that runs on one state never repeat an id).
    #[arg(long)]
    id_prefix: Option<String>,
    /// The fraction of requests sent with `"deadline_ms": 0` (answered at
    /// once with the fallback, degraded).
    #[arg(long, default_value_t = 0.0)]
    zero_deadline: f64,
    /// A request sent more than this after its scheduled time is behind
    /// schedule.
    #[arg(long, default_value_t = 1000)]
    late_us: u64,
    /// How long to wait for the answers still in flight at the end.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Prints one JSON object (the figures) as the last line.
    #[arg(long)]
    json: bool,
}

/// One request the scheduler hands out: its number and scheduled time.
#[derive(Clone, Copy)]
struct Job {
    n: u64,
    at: Instant,
}

/// What one answered request measured.
#[derive(Default)]
struct Tally {
    /// Client latency, from the scheduled time (µs).
    client_us: Vec<u32>,
    /// The server's `elapsed_us`.
    server_us: Vec<u32>,
    /// How late each request left (µs).
    send_lag_us: Vec<u32>,
    status: BTreeMap<u16, u64>,
    degraded: u64,
    errors: BTreeMap<String, u64>,
    behind: u64,
    last_answer: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.client_us.extend(other.client_us);
        self.server_us.extend(other.server_us);
        self.send_lag_us.extend(other.send_lag_us);
        for (k, v) in other.status {
            *self.status.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.degraded += other.degraded;
        self.behind += other.behind;
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

fn us(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// p50, p99, p99.9 and max of `v` (sorted here), in µs.
fn quantiles(v: &mut [u32]) -> [u32; 4] {
    if v.is_empty() {
        return [0; 4];
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    [at(0.50), at(0.99), at(0.999), v[v.len() - 1]]
}

/// This process's CPU seconds (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    let get = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // (fields 14 and 15 of stat: utime, stime; `f` starts at field 3)
    (get(11) + get(12)) / tick
}

/// The body of request `n`.
fn body(args: &Args, prefix: &str, n: u64) -> Bytes {
    let g = args.first + n;
    let e = cepheid_bench::risk::event_of(
        args.seed,
        cepheid_bench::risk::STEP_MS,
        g,
        args.cards,
        (args.cards / 2).max(1),
    );
    // (a deterministic choice of the zero-deadline requests, spread evenly)
    let zero = args.zero_deadline > 0.0 && {
        let u = (cepheid_bench::mix(g ^ 0x5eed) >> 11) as f64 / (1u64 << 53) as f64;
        u < args.zero_deadline
    };
    let deadline = if zero { r#","deadline_ms":0"# } else { "" };
    Bytes::from(format!(
        r#"{{"scene":"{}","event_id":"{prefix}-{g}","event":{{"type":"payment","card":"c{}","device":"d{}","amount":{}}}{deadline}}}"#,
        args.scene, e.card, e.device, e.amount
    ))
}

/// What the service's answer says: `degraded` and `elapsed_us`.
fn read_answer(bytes: &[u8]) -> (bool, Option<u64>) {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        degraded: bool,
        elapsed_us: Option<u64>,
    }
    match serde_json::from_slice::<Answer>(bytes) {
        Ok(a) => (a.degraded, a.elapsed_us),
        Err(_) => (false, None),
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

async fn connect(args: &Args, authority: &str) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stream);
    if args.h2c {
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .max_concurrent_reset_streams(1024)
            .handshake(io)
            .await
            .map_err(|e| format!("h2c handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(send))
    } else {
        let (send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(send))
    }
}

/// One slot: takes the next job when free, sends it, waits for its answer.
async fn slot(
    args: Arc<Args>,
    prefix: Arc<str>,
    mut sender: Sender,
    uri: hyper::Uri,
    authority: Arc<str>,
    jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
) -> Tally {
    let mut tally = Tally::default();
    let late = Duration::from_micros(args.late_us);
    loop {
        let job = {
            let mut rx = jobs.lock().await;
            match rx.recv().await {
                Some(job) => job,
                None => break,
            }
        };
        let sent = Instant::now();
        let lag = sent.saturating_duration_since(job.at);
        tally.send_lag_us.push(us(lag));
        if lag > late {
            tally.behind += 1;
        }
        let req = hyper::Request::post(uri.clone())
            .header(hyper::header::HOST, &*authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body(&args, &prefix, job.n)))
            .expect("a request");
        let answer = match &mut sender {
            Sender::H1(s) => match s.ready().await {
                Ok(()) => s.send_request(req).await,
                Err(e) => Err(e),
            },
            Sender::H2(s) => match s.ready().await {
                Ok(()) => s.send_request(req).await,
                Err(e) => Err(e),
            },
        };
        let answer = match answer {
            Ok(res) => {
                let status = res.status().as_u16();
                match res.into_body().collect().await {
                    Ok(body) => Ok((status, body.to_bytes())),
                    Err(e) => Err(format!("reading an answer: {e}")),
                }
            }
            Err(e) => Err(format!("sending: {e}")),
        };
        let done = Instant::now();
        match answer {
            Ok((status, bytes)) => {
                *tally.status.entry(status).or_default() += 1;
                tally
                    .client_us
                    .push(us(done.saturating_duration_since(job.at)));
                tally.last_answer = Some(done);
                if status == 200 {
                    let (degraded, elapsed) = read_answer(&bytes);
                    tally.degraded += u64::from(degraded);
                    if let Some(e) = elapsed {
                        tally.server_us.push(e.min(u32::MAX as u64) as u32);
                    }
                }
            }
            Err(e) => {
                *tally.errors.entry(e).or_default() += 1;
                // (a broken connection: a new one, so the slot goes on)
                match connect(&args, &authority).await {
                    Ok(s) => sender = s,
                    Err(e) => {
                        *tally.errors.entry(e).or_default() += 1;
                        break;
                    }
                }
            }
        }
    }
    tally
}

fn main() {
    let args = Arc::new(Args::parse());
    let base = args.url.trim_end_matches('/').to_string();
    let authority: Arc<str> = Arc::from(
        base.strip_prefix("http://")
            .unwrap_or_else(|| panic!("--url must be http://HOST:PORT (got {base})")),
    );
    let uri: hyper::Uri = match args.h2c {
        true => format!("{base}/v1/decide").parse().expect("a URL"),
        false => "/v1/decide".parse().expect("a path"),
    };
    let prefix: Arc<str> = Arc::from(args.id_prefix.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("L{}-{t}", std::process::id())
    }));
    let total = (args.rate * args.duration).round() as u64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let cpu_before = cpu_seconds();
    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let stop = Arc::new(AtomicBool::new(false));
    let scheduled = Arc::new(AtomicU64::new(0));
    let started = Arc::new(Mutex::new(None::<Instant>));
    let (tally, elapsed_sent) = runtime.block_on(async {
        // The connections first (not on the schedule's time).
        let mut senders = Vec::new();
        for _ in 0..args.connections.max(1) {
            match connect(&args, &authority).await {
                Ok(s) => senders.push(s),
                Err(e) => {
                    eprintln!("serve-load: {e}");
                    std::process::exit(2);
                }
            }
        }
        let mut slots = Vec::new();
        for sender in senders {
            let copies = match (&sender, args.h2c) {
                (Sender::H2(s), true) => (1..args.streams.max(1))
                    .map(|_| Sender::H2(s.clone()))
                    .collect(),
                _ => Vec::new(),
            };
            for s in std::iter::once(sender).chain(copies) {
                slots.push(tokio::spawn(slot(
                    Arc::clone(&args),
                    Arc::clone(&prefix),
                    s,
                    uri.clone(),
                    Arc::clone(&authority),
                    Arc::clone(&rx),
                )));
            }
        }
        // The schedule, on a thread of its own: tokio's timer has a
        // resolution of 1 ms; a thread's sleep is within tens of µs.
        let scheduler = {
            let (stop, scheduled, started) = (stop.clone(), scheduled.clone(), started.clone());
            let rate = args.rate;
            std::thread::Builder::new()
                .name("serve-load-schedule".into())
                .spawn(move || {
                    let start = Instant::now() + Duration::from_millis(10);
                    *started.lock().unwrap() = Some(start);
                    let period = 1.0 / rate;
                    let at = |n: u64| start + Duration::from_secs_f64(n as f64 * period);
                    let mut n = 0u64;
                    // (a sleep shorter than the timer's slack, 50 µs, is
                    // no shorter: at high rates each wake hands out every
                    // request due, a few at a time)
                    let least = Duration::from_micros(50);
                    while n < total && !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        while n < total && at(n) <= now {
                            if tx.send(Job { n, at: at(n) }).is_err() {
                                return;
                            }
                            n += 1;
                        }
                        scheduled.store(n, Ordering::Relaxed);
                        if n < total {
                            let wait = at(n).saturating_duration_since(Instant::now());
                            std::thread::sleep(wait.max(least));
                        }
                    }
                    drop(tx);
                })
                .expect("the scheduler thread")
        };
        let mut tally = Tally::default();
        let drain = Duration::from_secs_f64(args.drain);
        let schedule_end = Duration::from_secs_f64(args.duration) + Duration::from_millis(10);
        let deadline = tokio::time::Instant::now() + schedule_end + drain;
        for handle in slots {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, handle).await {
                Ok(Ok(t)) => tally.merge(t),
                Ok(Err(e)) => eprintln!("serve-load: a slot failed: {e}"),
                Err(_) => {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = scheduler.join();
        let start = started.lock().unwrap().expect("started");
        (tally, start)
    });
    let cpu = cpu_seconds() - cpu_before;
    report(
        &args,
        total,
        scheduled.load(Ordering::Relaxed),
        tally,
        elapsed_sent,
        cpu,
    );
}

fn report(args: &Args, total: u64, scheduled: u64, mut t: Tally, start: Instant, cpu: f64) {
    let answered: u64 = t.status.values().sum();
    let sent = t.send_lag_us.len() as u64;
    let errors: u64 = t.errors.values().sum();
    let span = t
        .last_answer
        .map_or(0.0, |l| l.saturating_duration_since(start).as_secs_f64());
    let achieved = if span > 0.0 {
        answered as f64 / span
    } else {
        0.0
    };
    let c = quantiles(&mut t.client_us);
    let s = quantiles(&mut t.server_us);
    let lag = quantiles(&mut t.send_lag_us);
    let ok = t.status.get(&200).copied().unwrap_or(0);
    let ms = |v: u32| format!("{:.3}", v as f64 / 1000.0);
    println!(
        "serve-load: {} req/s for {} s over {} {} ({}): scheduled {total}, handed out {scheduled}, sent {sent}, answered {answered} ({}), unanswered {}, errors {errors}{}",
        args.rate,
        args.duration,
        args.connections,
        if args.h2c { "h2c connections" } else { "HTTP/1.1 connections" },
        if args.h2c { format!("{} streams each", args.streams) } else { "keep-alive".into() },
        t.status.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "),
        sent.saturating_sub(answered),
        if t.errors.is_empty() { String::new() } else { format!(" {:?}", t.errors) },
    );
    println!(
        "serve-load: degraded {} of {ok} answered 200; behind schedule (sent > {} µs late) {}; achieved {achieved:.0} answers/s",
        t.degraded, args.late_us, t.behind
    );
    println!(
        "serve-load: client ms (from the scheduled time) p50 {} p99 {} p99.9 {} max {}",
        ms(c[0]),
        ms(c[1]),
        ms(c[2]),
        ms(c[3])
    );
    println!(
        "serve-load: server ms (elapsed_us) p50 {} p99 {} p99.9 {} max {}",
        ms(s[0]),
        ms(s[1]),
        ms(s[2]),
        ms(s[3])
    );
    println!(
        "serve-load: send lag ms p50 {} p99 {} p99.9 {} max {}; generator CPU {cpu:.2} s",
        ms(lag[0]),
        ms(lag[1]),
        ms(lag[2]),
        ms(lag[3])
    );
    if args.json {
        let json = serde_json::json!({
            "rate": args.rate,
            "duration": args.duration,
            "connections": args.connections,
            "h2c": args.h2c,
            "scheduled": total,
            "sent": sent,
            "answered": answered,
            "status": t.status.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "errors": errors,
            "unanswered": sent.saturating_sub(answered) + total.saturating_sub(sent),
            "degraded": t.degraded,
            "behind": t.behind,
            "achieved": achieved,
            "client_us": c,
            "server_us": s,
            "send_lag_us": lag,
            "generator_cpu_s": cpu,
        });
        println!("{json}");
    }
}
