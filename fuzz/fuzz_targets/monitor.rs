//! Any bytes → one request to the monitor's HTTP server over a real local
//! connection (`Monitor::serve_with`, started once, on 127.0.0.1): the
//! bytes written, the writing half closed, the answer read to its end.
//! The server must answer with an HTTP status line or close the
//! connection, within its request timeout (a hang guard of 10 s here),
//! and never panic (a panic on any of its threads aborts the process).

#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cepheid_monitor::{HttpLimits, Monitor, Server};
use libfuzzer_sys::fuzz_target;

/// The server of the process (kept for its life).
fn server() -> SocketAddr {
    static SERVER: OnceLock<(Monitor, Server)> = OnceLock::new();
    let (_, server) = SERVER.get_or_init(|| {
        let monitor = Monitor::new();
        let mut limits = HttpLimits::default();
        limits.request_timeout = Duration::from_millis(500);
        limits.write_timeout = Duration::from_secs(2);
        limits.max_request_head = 4096;
        let server = monitor.serve_with("127.0.0.1:0", limits).expect("serves");
        (monitor, server)
    });
    server.addr()
}

fuzz_target!(|data: &[u8]| {
    let mut stream = TcpStream::connect(server()).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    // (the server may answer and close before it read everything)
    let _ = stream.write_all(data);
    let _ = stream.shutdown(Shutdown::Write);
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            // (libFuzzer's timer: `-timeout`'s SIGALRM every second)
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "no end of the answer"
                );
            }
            Err(e) => panic!("no end of the answer in {:?}: {e}", started.elapsed()),
        }
        assert!(answer.len() < 64 << 20, "an answer without end");
    }
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "not an answer: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
});
