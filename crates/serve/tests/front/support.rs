//! The tests' support: a front on `127.0.0.1:0` over the fixture, curl
//! and Python clients, and the log of every exchange the document checks.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cepheid_serve::http::{start, Front, FrontOptions, TlsFiles};
use serde_json::{json, Value};

use crate::fixture::Fixture;

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// This run's scratch folder.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn unique(stem: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    scratch().join(format!("{stem}-{}", N.fetch_add(1, Ordering::SeqCst)))
}

/// The file every exchange is appended to.
pub fn exchanges_path() -> PathBuf {
    scratch().join("exchanges.jsonl")
}

fn log() -> &'static Mutex<File> {
    static LOG: OnceLock<Mutex<File>> = OnceLock::new();
    LOG.get_or_init(|| {
        Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(exchanges_path())
                .unwrap(),
        )
    })
}

/// Appends one exchange (a JSON object) to the log.
pub fn record(exchange: &Value) {
    let mut line = serde_json::to_string(exchange).unwrap();
    line.push('\n');
    log().lock().unwrap().write_all(line.as_bytes()).unwrap();
}

/// The python of the validators' environment (installed when missing):
/// it runs the tests' stdlib clients too.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join(".ci/install-openapi-validator"))
            .output()
            .expect("runs .ci/install-openapi-validator");
        assert!(
            out.status.success(),
            "cannot install the validators: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().expect("its python").trim())
    })
}

/// A front over a fixture, stopped when dropped.
pub struct Server {
    pub test: &'static str,
    pub fixture: Arc<Fixture>,
    pub front: Option<Front>,
    pub addr: std::net::SocketAddr,
    pub tls: Option<PathBuf>,
    pub token: Option<String>,
}

pub fn options() -> FrontOptions {
    FrontOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        threads: 2,
        ..FrontOptions::default()
    }
}

impl Server {
    pub fn start(test: &'static str) -> Server {
        Server::with(test, options())
    }

    pub fn with(test: &'static str, options: FrontOptions) -> Server {
        let fixture = Fixture::new();
        let tls = options.tls.as_ref().map(|t| t.cert.clone());
        let front = start(options, fixture.clone()).expect("the front starts");
        Server {
            test,
            addr: front.local_addr(),
            fixture,
            front: Some(front),
            tls,
            token: None,
        }
    }

    /// A curl client: `--http1.1`, `--http2-prior-knowledge`, or with TLS
    /// `--http2` / `--http1.1`.
    pub fn curl(&self, proto: Proto) -> Client {
        Client {
            test: self.test,
            proto,
            base: match &self.tls {
                Some(_) => format!("https://127.0.0.1:{}", self.addr.port()),
                None => format!("http://{}", self.addr),
            },
            cacert: self.tls.clone(),
            token: self.token.clone(),
            parallel: false,
        }
    }

    pub fn h1(&self) -> Client {
        self.curl(Proto::H1)
    }

    pub fn h2(&self) -> Client {
        self.curl(Proto::H2)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(front) = self.front.take() {
            front.shutdown();
            front.join();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// One request for [`Client::batch`].
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Req {
    pub fn get(path: &str) -> Req {
        Req {
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// A POST with `Content-Type: application/json`.
    pub fn post(path: &str, body: impl AsRef<[u8]>) -> Req {
        Req {
            method: "POST".into(),
            path: path.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some(body.as_ref().to_vec()),
        }
    }

    pub fn method(mut self, method: &str) -> Req {
        self.method = method.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An answer as curl received it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub version: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The error's code, field and message.
    pub fn error(&self) -> (String, Option<String>, String) {
        let v = self.json();
        let e = &v["error"];
        (
            e["code"]
                .as_str()
                .unwrap_or_else(|| panic!("no error: {v}"))
                .to_owned(),
            e["field"].as_str().map(str::to_owned),
            e["message"].as_str().unwrap().to_owned(),
        )
    }

    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Answer {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.error().0, code, "{}", self.text());
        self
    }
}

/// A curl client of one server, one protocol.
#[derive(Clone)]
pub struct Client {
    test: &'static str,
    pub proto: Proto,
    base: String,
    cacert: Option<PathBuf>,
    pub token: Option<String>,
    /// `--parallel`: the batch's requests at once (HTTP/2 multiplexes
    /// them on one connection).
    pub parallel: bool,
}

impl Client {
    pub fn parallel(mut self) -> Client {
        self.parallel = true;
        self
    }

    pub fn token(mut self, token: Option<&str>) -> Client {
        self.token = token.map(str::to_owned);
        self
    }

    fn label(&self) -> String {
        let proto = match self.proto {
            Proto::H1 => "--http1.1",
            Proto::H2 if self.cacert.is_some() => "--http2",
            Proto::H2 => "--http2-prior-knowledge",
        };
        let tls = if self.cacert.is_some() { " (TLS)" } else { "" };
        format!("curl {proto}{tls}")
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send(Req::get(path))
    }

    pub fn post(&self, path: &str, body: impl AsRef<[u8]>) -> Answer {
        self.send(Req::post(path, body))
    }

    pub fn send(&self, req: Req) -> Answer {
        self.batch(&[req]).pop().unwrap()
    }

    /// The requests in order by one curl, over one connection where it
    /// can keep it (`--next`). But h2c: curl 7.88.1 (Debian 12) fails
    /// the second request of an h2c prior-knowledge connection it reuses
    /// ("Error in the HTTP2 framing layer", against node's HTTP/2 server
    /// too), so h2c requests are one curl each.
    pub fn batch(&self, reqs: &[Req]) -> Vec<Answer> {
        if self.proto == Proto::H2 && self.cacert.is_none() && reqs.len() > 1 {
            return reqs
                .iter()
                .flat_map(|r| self.batch(std::slice::from_ref(r)))
                .collect();
        }
        let dir = unique("curl");
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("curl");
        cmd.arg("-sS");
        if self.parallel {
            cmd.args(["--parallel", "--parallel-max", "100"]);
        }
        for (i, req) in reqs.iter().enumerate() {
            if i > 0 {
                cmd.arg("--next");
            }
            match (self.proto, &self.cacert) {
                (Proto::H1, _) => cmd.arg("--http1.1"),
                (Proto::H2, None) => cmd.arg("--http2-prior-knowledge"),
                (Proto::H2, Some(_)) => cmd.arg("--http2"),
            };
            if let Some(ca) = &self.cacert {
                cmd.arg("--cacert").arg(ca);
            }
            cmd.args(["--max-time", "60", "-X", &req.method]);
            cmd.arg("-D").arg(dir.join(format!("{i}.head")));
            cmd.arg("-o").arg(dir.join(format!("{i}.body")));
            cmd.args(["-w", "%{urlnum} %{http_code} %{http_version}\\n"]);
            if let Some(token) = &self.token {
                cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
            }
            for (name, value) in &req.headers {
                cmd.arg("-H").arg(if value.is_empty() {
                    format!("{name};")
                } else {
                    format!("{name}: {value}")
                });
            }
            if let Some(body) = &req.body {
                let file = dir.join(format!("{i}.request"));
                std::fs::write(&file, body).unwrap();
                cmd.arg("--data-binary").arg(format!("@{}", file.display()));
                if !req
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    // curl's default is a form; a request without one says so.
                    cmd.args(["-H", "Content-Type:"]);
                }
            }
            cmd.arg(format!("{}{}", self.base, req.path));
        }
        let out = cmd.stderr(Stdio::piped()).output().expect("runs curl");
        let said = String::from_utf8_lossy(&out.stdout);
        let mut lines: Vec<(usize, &str)> = said
            .lines()
            .map(|l| {
                let (n, rest) = l.split_once(' ').unwrap();
                (n.parse().unwrap(), rest)
            })
            .collect();
        lines.sort();
        let lines: Vec<&str> = lines.into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines.len(),
            reqs.len(),
            "curl: {}\n{said}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut answers = Vec::new();
        for (i, (req, line)) in reqs.iter().zip(lines).enumerate() {
            let (status, version) = line.split_once(' ').unwrap();
            let status: u16 = status.parse().unwrap();
            assert_ne!(
                status,
                0,
                "curl got no answer: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let head = std::fs::read_to_string(dir.join(format!("{i}.head"))).unwrap();
            // The last block (after any `100 Continue`).
            let block = head.trim_end().rsplit("\r\n\r\n").next().unwrap_or("");
            let headers = block
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let body = std::fs::read(dir.join(format!("{i}.body"))).unwrap_or_default();
            let answer = Answer {
                status,
                version: version.to_owned(),
                headers,
                body,
            };
            self.log(req, &answer);
            answers.push(answer);
        }
        let _ = std::fs::remove_dir_all(&dir);
        answers
    }

    fn log(&self, req: &Req, answer: &Answer) {
        let mut request_headers: BTreeMap<String, String> = req
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        if self.token.is_some() {
            request_headers.insert("authorization".into(), "Bearer (a token)".into());
        }
        let body = req.body.as_deref().map(std::str::from_utf8);
        record(&json!({
            "test": self.test,
            "client": self.label(),
            "method": req.method,
            "path": req.path,
            "request_headers": request_headers,
            "request_body": match body { Some(Ok(text)) => Some(text), _ => None },
            "request_body_utf8": !matches!(body, Some(Err(_))),
            "status": answer.status,
            "headers": answer.headers,
            "body": answer.text(),
        }));
    }
}

/// Runs a Python script (standard library only) with the server's
/// address as `sys.argv[1]`; it prints one JSON exchange a line (as the
/// log holds them, without `test`), which are logged and returned.
pub fn python_script(test: &'static str, server: &Server, script: &str) -> Vec<Value> {
    let file = unique("client").with_extension("py");
    std::fs::write(&file, script).unwrap();
    let out = Command::new(python())
        .arg(&file)
        .arg(server.addr.to_string())
        .args(server.token.as_deref())
        .output()
        .expect("runs python");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut exchanges = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        v["test"] = json!(test);
        record(&v);
        exchanges.push(v);
    }
    exchanges
}

/// A self-signed certificate for 127.0.0.1 and localhost, made now by
/// `openssl req` (never committed): its files.
pub fn certificate() -> TlsFiles {
    let dir = unique("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=cepheid-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("runs openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    TlsFiles { cert, key }
}

/// A tokens file with these lines.
pub fn tokens_file(text: &str) -> PathBuf {
    let file = unique("tokens");
    std::fs::write(&file, text).unwrap();
    file
}

/// A decide request's body.
pub fn decide_body(scene: &str, event_id: &str, amount: u64) -> String {
    json!({"scene": scene, "event_id": event_id,
           "event": {"type": "payment", "card": "4000-0002", "amount": amount}})
    .to_string()
}

/// One sample of the metrics' text: its value.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}
