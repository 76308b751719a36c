//! Connecting the processes of `--processes P`: one TCP stream between
//! every two processes, on which timely's networking then runs
//! (`initialize_networking_from_sockets`).
//!
//! Timely's own set-up (`timely_communication::networking`) was used
//! before. It polls its listener once a second, so a run of several
//! processes started together lost up to a second before its first event.
//! It prints its messages on standard output, where the matches go. It
//! panics on a connection that does not speak its handshake. This one
//! waits on `accept`, retries a refused connection every 100 ms, and says
//! what it waits for on standard error once. A connection that sends no
//! valid process number within [`HANDSHAKE`] is dropped with a message,
//! and the process waits on. The handshake is timely's: the connecting
//! process writes its number as a big-endian `u64`.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use cepheid_runtime::Level;

use super::Say;

/// How long an accepted connection has to send its process number.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// How long to wait before connecting again to a process that refused.
const RETRY: Duration = Duration::from_millis(100);

/// How long between two looks for a process connecting (and for a stop).
const LOOK: Duration = Duration::from_millis(20);

/// Was the run stopped while it waits (`Handle::stop_asked`): why.
pub type Asked = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Why the processes are not connected.
pub enum Unconnected {
    /// A socket's error.
    Io(io::Error),
    /// The run was stopped while it waited (why).
    Stopped(String),
}

impl From<io::Error> for Unconnected {
    fn from(e: io::Error) -> Unconnected {
        Unconnected::Io(e)
    }
}

/// The streams to every other process of `addresses` (`None` at
/// `process`, this one's own place), as timely's networking takes them.
/// Processes below `process` are connected to, those above are waited for
/// on `addresses[process]`. Waits as long as it takes: the processes of a
/// run may be started far apart, unless it is stopped (`asked`).
pub fn sockets(
    addresses: &[String],
    process: usize,
    say: &Say,
    asked: &Asked,
) -> Result<Vec<Option<TcpStream>>, Unconnected> {
    let address = &addresses[process];
    let listener = TcpListener::bind(address.as_str())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))?;
    let processes = addresses.len();
    // Wait for the higher processes on a thread of its own, while this one
    // connects to the lower ones.
    let (accept_say, accept_asked) = (say.clone(), Arc::clone(asked));
    // (the connecting side gave up: the accepting one stops too)
    let gone = Arc::new(AtomicBool::new(false));
    let accept_gone = Arc::clone(&gone);
    let accepting = thread::Builder::new()
        .name("cepheid-accept".into())
        .spawn(move || {
            let stopped = || match accept_asked() {
                Some(why) => Some(why),
                None if accept_gone.load(Ordering::Relaxed) => Some(String::new()),
                None => None,
            };
            accept(&listener, process, processes, &accept_say, &stopped)
        })?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(processes);
    for (index, address) in addresses.iter().enumerate().take(process) {
        match connect(address, index, process, say, asked) {
            Ok(stream) => streams.push(Some(stream)),
            Err(e) => {
                gone.store(true, Ordering::Relaxed);
                let _ = accepting.join();
                return Err(e);
            }
        }
    }
    streams.push(None);
    let mut above: Vec<Option<TcpStream>> = (process + 1..processes).map(|_| None).collect();
    for (number, stream) in accepting.join().expect("the accepting thread")? {
        above[number - process - 1] = Some(stream);
    }
    streams.extend(above);
    Ok(streams)
}

/// Connects to process `index` at `address`, retrying while it refuses,
/// and says who this is.
fn connect(
    address: &str,
    index: usize,
    process: usize,
    say: &Say,
    asked: &Asked,
) -> Result<TcpStream, Unconnected> {
    let mut told = false;
    loop {
        if let Some(why) = asked() {
            return Err(Unconnected::Stopped(why));
        }
        match TcpStream::connect(address) {
            Ok(mut stream) => {
                stream.set_nodelay(true)?;
                stream.write_all(&(process as u64).to_be_bytes())?;
                return Ok(stream);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                ) =>
            {
                if !told {
                    say!(
                        say,
                        Info,
                        "waiting for process {index} at {address} ({e}); retrying"
                    );
                    told = true;
                }
                thread::sleep(RETRY);
            }
            Err(e) => {
                return Err(Unconnected::Io(io::Error::new(
                    e.kind(),
                    format!("cannot connect to process {index} at {address}: {e}"),
                )))
            }
        }
    }
}

/// Accepts the processes above `process` (of `processes`): their numbers
/// and streams; looks every [`LOOK`] whether it was `stopped`.
fn accept(
    listener: &TcpListener,
    process: usize,
    processes: usize,
    say: &Say,
    stopped: &dyn Fn() -> Option<String>,
) -> Result<Vec<(usize, TcpStream)>, Unconnected> {
    let expected = processes - process - 1;
    let mut received = Vec::with_capacity(expected);
    let mut seen = HashSet::new();
    let address = listener.local_addr()?;
    match expected {
        0 => {}
        1 => say!(
            say,
            Info,
            "waiting on {address} for process {}",
            process + 1
        ),
        _ => say!(
            say,
            Info,
            "waiting on {address} for processes {} to {}",
            process + 1,
            processes - 1
        ),
    }
    listener.set_nonblocking(true)?;
    while received.len() < expected {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(why) = stopped() {
                    return Err(Unconnected::Stopped(why));
                }
                thread::sleep(LOOK);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // (an accepted stream does not inherit the listener's mode on
        // every platform)
        stream.set_nonblocking(false)?;
        let mut number = [0; 8];
        let said = stream
            .set_read_timeout(Some(HANDSHAKE))
            .and_then(|()| stream.read_exact(&mut number))
            .map(|()| u64::from_be_bytes(number));
        let why = match said {
            Ok(n) if n > process as u64 && n < processes as u64 => {
                if seen.insert(n) {
                    stream.set_read_timeout(None)?;
                    stream.set_nodelay(true)?;
                    received.push((n as usize, stream));
                    continue;
                }
                format!("it says it is process {n}, already connected")
            }
            Ok(n) => format!(
                "it says it is process {n}, not one of {} to {}",
                process + 1,
                processes - 1
            ),
            Err(e) => format!("no process number within {HANDSHAKE:?}: {e}"),
        };
        say!(
            say,
            Warning,
            "warning: a connection from {peer} to {address} is dropped: {why}"
        );
    }
    Ok(received)
}

/// Why the processes do not go on together.
pub enum Disagreement {
    /// Another process runs another command: what differs.
    Differ(String),
    /// A stream failed.
    Io(io::Error),
}

/// Most bytes of an agreement a process accepts from another.
const MAX_AGREEMENT: u32 = 1 << 16;

/// Sends `agreement` (what every process must agree on, `name: value` per
/// line) to every other process and checks theirs, before timely's
/// networking starts on the streams (issue 26: processes that ran other
/// commands gave silent wrong records). Each side writes one message (a
/// big-endian `u32` length, then the text) and reads one, so the streams
/// are where timely expects them afterwards.
pub fn agree(
    streams: &mut [Option<TcpStream>],
    process: usize,
    agreement: &str,
) -> Result<(), Disagreement> {
    let message = [
        &(agreement.len() as u32).to_be_bytes()[..],
        agreement.as_bytes(),
    ]
    .concat();
    for stream in streams.iter_mut().flatten() {
        stream.write_all(&message).map_err(Disagreement::Io)?;
    }
    for (index, stream) in streams.iter_mut().enumerate() {
        let Some(stream) = stream else { continue };
        let mut len = [0; 4];
        stream.read_exact(&mut len).map_err(Disagreement::Io)?;
        let len = u32::from_be_bytes(len);
        if len > MAX_AGREEMENT {
            return Err(Disagreement::Differ(format!(
                "process {index} did not send what it runs (an older cepheid?); every process must run the same command (but `Scale::process`)"
            )));
        }
        let mut theirs = vec![0; len as usize];
        stream.read_exact(&mut theirs).map_err(Disagreement::Io)?;
        let theirs = String::from_utf8_lossy(&theirs);
        if theirs == agreement {
            continue;
        }
        let ours: Vec<&str> = agreement.lines().collect();
        let differs = theirs
            .lines()
            .zip(&ours)
            .find(|(t, o)| t != *o)
            .map(|(t, o)| {
                let name = o.split(": ").next().unwrap_or_default();
                let value = |line: &str| {
                    line.split_once(": ")
                        .map_or(line.to_string(), |p| p.1.to_string())
                };
                format!(
                    "its {name} is {}, this one's (process {process}) {}",
                    value(t),
                    value(o)
                )
            })
            .unwrap_or_else(|| "what it runs differs".to_string());
        return Err(Disagreement::Differ(format!(
            "process {index} runs another command: {differs}; every process must run the same command (but `Scale::process`); no record was made"
        )));
    }
    Ok(())
}
