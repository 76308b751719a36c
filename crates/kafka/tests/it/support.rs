//! A real Kafka-protocol broker for the tests: `tansu` (a Kafka-API broker
//! written in Rust), installed by `.ci/install-broker`, started on
//! 127.0.0.1 on a free port with a storage of its own, killed on drop.
//!
//! The broker is found at `$CEPHEID_KAFKA_BROKER`, else at the path
//! `.ci/install-broker` prints (it reuses an installed copy, and installs
//! one on a fresh machine). A broker that cannot be installed or started
//! fails the test with the reason: these tests are never skipped.
#![allow(dead_code)] // each test binary uses a part of it

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

/// Where the broker lives: `$CEPHEID_KAFKA_BROKER`, or what
/// `.ci/install-broker` prints (installing it first if needed).
pub fn broker_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("CEPHEID_KAFKA_BROKER") {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "CEPHEID_KAFKA_BROKER={} is not a file",
                path.display()
            );
            return path;
        }
        // (the repository's root: this crate's, or the root package's,
        // whose `tests/cli_kafka.rs` includes this file)
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join(".ci/install-broker"))
            .find(|script| script.is_file())
            .expect(".ci/install-broker above the package");
        let output = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "{} failed ({}): the Kafka tests need the tansu broker; \
             run it by hand to see why, or set CEPHEID_KAFKA_BROKER",
            script.display(),
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
        assert!(
            path.is_file(),
            "{} printed {:?}, not the broker's path",
            script.display(),
            stdout
        );
        path
    })
}

/// What the broker keeps its topics in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// `memory://`: lost when the broker stops.
    Memory,
    /// `sqlite://` in the broker's folder: survives a restart.
    Sqlite,
}

/// A running broker, killed (and its folder removed) on drop.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    storage: Storage,
    /// The port it tells clients to connect to, when not its own (a
    /// [`Proxy`] in front of it).
    advertised: Option<u16>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds a free port");
    listener.local_addr().expect("local address").port()
}

impl Broker {
    /// A broker with in-memory storage.
    pub fn start() -> Broker {
        Broker::start_with(Storage::Memory)
    }

    /// A broker with the given storage, answering metadata requests.
    pub fn start_with(storage: Storage) -> Broker {
        Broker::start_advertising(storage, None)
    }

    /// A broker with in-memory storage that tells clients to connect to a
    /// [`Proxy`] in front of it, and the proxy (started).
    pub fn start_behind_proxy() -> (Broker, Proxy) {
        let port = free_port();
        let broker = Broker::start_advertising(Storage::Memory, Some(port));
        let mut proxy = Proxy {
            child: None,
            port,
            origin: broker.port,
            dir: broker.dir.clone(),
        };
        proxy.start();
        (broker, proxy)
    }

    /// A broker with in-memory storage behind a [`FaultProxy`] that holds
    /// each of its answers back `delay` (the proxy started).
    pub fn start_behind_slow_proxy(delay: Duration) -> (Broker, FaultProxy) {
        let port = free_port();
        let broker = Broker::start_advertising(Storage::Memory, Some(port));
        let proxy = FaultProxy::start(port, broker.port, delay);
        (broker, proxy)
    }

    /// A broker with in-memory storage behind a [`FaultProxy`] that injects
    /// no fault yet (the proxy started).
    pub fn start_behind_fault_proxy() -> (Broker, FaultProxy) {
        Broker::start_behind_slow_proxy(Duration::ZERO)
    }

    fn start_advertising(storage: Storage, advertised: Option<u16>) -> Broker {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cepheid-kafka-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creates the broker's folder");
        let mut broker = Broker {
            child: None,
            port: free_port(),
            dir,
            storage,
            advertised,
        };
        broker.launch();
        broker
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `tcp://127.0.0.1:PORT`, for tansu's own commands.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let storage = match self.storage {
            Storage::Memory => "memory://tansu/".to_string(),
            Storage::Sqlite => format!("sqlite://{}/tansu.db", self.dir.display()),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .expect("opens the broker's log");
        let child = Command::new(broker_binary())
            .arg("broker")
            .args(["--listener-url", &self.url()])
            .args([
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{}", self.advertised.unwrap_or(self.port)),
            ])
            .args(["--storage-engine", &storage])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", broker_binary().display()));
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.dir.join("broker.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the broker answers a metadata request (30 s at most).
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // (a client of its own each time: one that had an answer too
            // late would ask the broker it advertises next, a proxy that
            // is started only once the broker is ready)
            let consumer: BaseConsumer = self.config().create().expect("a client");
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("child status"))
            {
                panic!(
                    "the broker exited ({status}) before answering:\n{}",
                    self.log()
                );
            }
            match consumer.fetch_metadata(None, Duration::from_millis(500)) {
                Ok(metadata) if !metadata.brokers().is_empty() => return,
                _ if Instant::now() > deadline => panic!(
                    "the broker on {} did not answer a metadata request in 30 s:\n{}",
                    self.bootstrap(),
                    self.log()
                ),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// A client configuration pointing at this broker.
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("broker.address.family", "v4");
        config
    }

    /// Creates `topic` with `partitions` partitions (with tansu's CLI).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let output = Command::new(broker_binary())
            .args(["topic", "create", topic])
            .args(["--broker", &self.url()])
            .args(["--partitions", &partitions.to_string()])
            .output()
            .expect("runs tansu topic create");
        assert!(
            output.status.success(),
            "tansu topic create {topic} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Wait until the metadata shows every partition.
        let consumer: BaseConsumer = self.config().create().expect("a client");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
                if metadata
                    .topics()
                    .iter()
                    .any(|t| t.name() == topic && t.partitions().len() == partitions as usize)
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "topic {topic} did not appear");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Deletes `topic` (with tansu's CLI) and waits until the metadata no
    /// longer shows it.
    pub fn delete_topic(&self, topic: &str) {
        let output = Command::new(broker_binary())
            .args(["topic", "delete", topic])
            .args(["--broker", &self.url()])
            .output()
            .expect("runs tansu topic delete");
        assert!(
            output.status.success(),
            "tansu topic delete {topic} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let consumer: BaseConsumer = self.config().create().expect("a client");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(2)) {
                let gone = metadata
                    .topics()
                    .iter()
                    .filter(|t| t.name() == topic)
                    .all(|t| t.error().is_some() || t.partitions().is_empty());
                if gone {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "topic {topic} did not go");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the broker (SIGKILL): what a crash does.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage (an
    /// in-memory broker comes back empty).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Produces plain (non-transactional) records and waits for them.
    pub fn produce(&self, topic: &str, partition: i32, records: &[(&str, &str)]) {
        let producer: BaseProducer = self.config().create().expect("a producer");
        for (key, payload) in records {
            producer
                .send(
                    BaseRecord::to(topic)
                        .partition(partition)
                        .key(*key)
                        .payload(*payload),
                )
                .map_err(|(e, _)| e)
                .expect("queues a record");
        }
        producer
            .flush(Duration::from_secs(10))
            .expect("records delivered");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("broker's folder kept: {}", self.dir.display());
        }
    }
}

/// One record as a test reads it back.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its value, as text.
    pub payload: String,
}

impl Broker {
    /// Every record of every partition of `topic` from the beginning as a
    /// consumer with `isolation` (`read_committed`, `read_uncommitted`)
    /// sees them, in partition and offset order: read until nothing came
    /// for 2 s.
    pub fn read_topic(&self, topic: &str, isolation: &str) -> Vec<Seen> {
        use rdkafka::{Message, Offset, TopicPartitionList};
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "test-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", isolation)
            .create()
            .expect("a consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut tpl = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                    .expect("adds");
            }
        }
        consumer.assign(&tpl).expect("assign");
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < Duration::from_secs(2) {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let m = message.expect("a record");
                out.push(Seen {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: text(m.key()),
                    payload: text(m.payload()).unwrap_or_default(),
                });
                last = Instant::now();
            }
        }
        out.sort();
        out
    }
}

/// A topic name unique in this process.
pub fn topic(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `tansu proxy` in front of a broker (`Broker::start_behind_proxy`):
/// clients connect to it; stopped, the broker is unreachable to them
/// (connections refused) while it keeps its memory storage.
pub struct Proxy {
    child: Option<Child>,
    port: u16,
    origin: u16,
    dir: PathBuf,
}

impl Proxy {
    /// `127.0.0.1:PORT` of the proxy, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port, and waits until it accepts.
    pub fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("proxy.log"))
            .expect("opens the proxy's log");
        let child = Command::new(broker_binary())
            .arg("proxy")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--origin-url", &format!("tcp://127.0.0.1:{}", self.origin)])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the proxy: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the proxy did not listen in 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it: the broker behind it is unreachable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A proxy of the tests' own in front of a broker (which advertises the
/// proxy's port, so that every connection goes through it), that injects
/// faults: each answer of the broker is held back a delay before it is
/// passed on, as on a slow network with slow acknowledgements
/// ([`FaultProxy::set_delay`]), and the broker can be made unreachable
/// ([`FaultProxy::cut`]: open connections closed, new ones closed at once)
/// and reachable again ([`FaultProxy::mend`]). A client's exchanges take
/// longer: the commit that follows a checkpoint's marker (three round
/// trips) comes at least three delays after it, so that a run killed just
/// after a cut is complete is killed before that cut's commit. (tansu's
/// own proxy passes bytes on at once.) Its threads end with the test
/// process.
pub struct FaultProxy {
    port: u16,
    faults: std::sync::Arc<Faults>,
}

/// What a [`FaultProxy`] does now, shared with its threads.
#[derive(Default)]
struct Faults {
    /// The delay of the broker's answers, in microseconds.
    delay_micros: std::sync::atomic::AtomicU64,
    /// Cut: no connection passes.
    cut: std::sync::atomic::AtomicBool,
    /// The open connections (both ends), closed by a cut.
    open: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

impl FaultProxy {
    /// Listens on `port`, passing each connection on to `origin`.
    fn start(port: u16, origin: u16, delay: Duration) -> FaultProxy {
        use std::sync::atomic::Ordering::Relaxed;
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the proxy's port");
        let faults = std::sync::Arc::new(Faults::default());
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        faults.delay_micros.store(micros, Relaxed);
        let shared = faults.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if shared.cut.load(Relaxed) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(broker) = std::net::TcpStream::connect(("127.0.0.1", origin)) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), broker.set_nodelay(true));
                let (Ok(client_in), Ok(broker_in)) = (client.try_clone(), broker.try_clone())
                else {
                    continue;
                };
                if let (Ok(a), Ok(b)) = (client.try_clone(), broker.try_clone()) {
                    shared.open.lock().unwrap().extend([a, b]);
                }
                let faults = shared.clone();
                std::thread::spawn(move || pass_on(client_in, broker, None));
                std::thread::spawn(move || pass_on(broker_in, client, Some(faults)));
            }
        });
        FaultProxy { port, faults }
    }

    /// `127.0.0.1:PORT` of the proxy, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Holds each answer of the broker back `delay` from now on.
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        (self.faults.delay_micros).store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes the broker unreachable: every open connection closed, and
    /// each new one closed as soon as it is accepted, until [`mend`].
    ///
    /// [`mend`]: FaultProxy::mend
    pub fn cut(&self) {
        self.faults
            .cut
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for stream in self.faults.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Makes the broker reachable again.
    pub fn mend(&self) {
        (self.faults.cut).store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Copies what `from` sends to `to`, each read passed on the faults'
/// delay after it came (a latency: reads keep coming meanwhile; none
/// without `faults`), until either side closes.
fn pass_on(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    faults: Option<std::sync::Arc<Faults>>,
) {
    use std::io::Write as _;
    let delay = move || {
        faults.as_ref().map_or(Duration::ZERO, |f| {
            Duration::from_micros(f.delay_micros.load(std::sync::atomic::Ordering::Relaxed))
        })
    };
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, bytes) in rx {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if tx
            .send((Instant::now() + delay(), buffer[..n].to_vec()))
            .is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = from.shutdown(std::net::Shutdown::Both);
}
