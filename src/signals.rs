//! SIGINT and SIGTERM stop `cepheid run` cleanly: the first one is handed
//! to the run (which stops reading, flushes what the watermark released and
//! prints its summary); a second one ends the process at once (for a run
//! stuck writing to a full pipe), with the same status, 128 + the signal's
//! number. With `--watch`, SIGHUP is handed to the run too (it reloads
//! the pattern files) and never ends the process.

//!
//! The signals are taken from the start of the command, before its run
//! is ready ([`Stop`]): one that comes while the rules are read or a
//! broker is waited for stops the run once it is ready, if it is within
//! 2 s, else ends the process, saying so, with the same status (nothing
//! was read yet, nothing to keep); the other processes of `--processes`
//! are waited for by a ready run, which a stop ends. Before, a signal
//! before the run was ready ended it by the default action, saying
//! nothing.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cepheid_runtime::Handle;

/// The signal's name, for messages.
pub fn name(signal: i32) -> &'static str {
    #[cfg(unix)]
    {
        match signal {
            signal_hook::consts::SIGINT => "SIGINT",
            signal_hook::consts::SIGTERM => "SIGTERM",
            _ => "a signal",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = signal;
        "a signal"
    }
}

/// The exit status after `signal`: 128 + its number (130 for SIGINT, 143
/// for SIGTERM), as a shell reports a process the signal ended.
pub fn exit_status(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// Is `signal` SIGHUP (a reload with `--watch`, not a stop)?
pub fn is_hangup(signal: i32) -> bool {
    #[cfg(unix)]
    {
        signal == signal_hook::consts::SIGHUP
    }
    #[cfg(not(unix))]
    {
        let _ = signal;
        false
    }
}

/// Where SIGINT and SIGTERM go ([`Stop::install`]): to the run's handle
/// once it is ready ([`Stop::ready`]); before, they end the process.
pub struct Stop {
    /// `None`: not ready yet; `Some(None)`: ready, and not stoppable (its
    /// signals end the process, as before it was ready).
    handle: Arc<Mutex<Option<Option<Handle>>>>,
    /// The signal that stopped it (0: none), for the exit status.
    signal: Arc<AtomicI32>,
}

impl Stop {
    /// Takes SIGINT and SIGTERM (and with `hangup` SIGHUP, a reload of a
    /// ready run; before, nothing) from now on.
    pub fn install(hangup: bool) -> Stop {
        let handle: Arc<Mutex<Option<Option<Handle>>>> = Arc::default();
        let slot = Arc::clone(&handle);
        let signal = hand_to(
            move |number| {
                let ready = lock(&slot);
                match (&*ready, is_hangup(number)) {
                    (Some(Some(handle)), true) => handle.reload("SIGHUP"),
                    (Some(Some(handle)), false) => handle.stop(name(number)),
                    (_, true) => {}
                    (None, false) => {
                        let slot = Arc::clone(&slot);
                        std::thread::spawn(move || stop_when_ready(&slot, number));
                    }
                    (Some(None), false) => std::process::exit(exit_status(number).into()),
                }
            },
            hangup,
        );
        Stop { handle, signal }
    }

    /// The run is ready: its `handle` takes the signals from now on
    /// (`None`: it cannot be stopped; they end the process).
    pub fn ready(&self, handle: Option<Handle>) {
        *lock(&self.handle) = Some(handle);
    }

    /// The SIGINT or SIGTERM that came (0: none).
    pub fn signal(&self) -> i32 {
        self.signal.load(Ordering::SeqCst)
    }
}

/// How long a stop that came before the run was ready waits for it:
/// ready in that time (a resume said, its outputs opened), the run stops
/// as any run does (a last checkpoint, its summary); else (a broker waited
/// for, the rules of a large folder read) the process ends.
const READY_GRACE: Duration = Duration::from_secs(2);

/// The stop `number` that came before the run was ready: handed to the
/// run if it is ready within [`READY_GRACE`], else the process ends,
/// saying so (nothing was read yet, nothing to keep).
fn stop_when_ready(slot: &Mutex<Option<Option<Handle>>>, number: i32) {
    let deadline = Instant::now() + READY_GRACE;
    loop {
        match &*lock(slot) {
            Some(Some(handle)) => return handle.stop(name(number)),
            Some(None) => std::process::exit(exit_status(number).into()),
            None if Instant::now() >= deadline => {
                say!(
                    "cepheid: stopped by {} before the run started",
                    name(number)
                );
                std::process::exit(exit_status(number).into());
            }
            None => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`install`]s `on_signal` (a failure said as a warning: the signals then
/// end the run at once), and keeps the number of the SIGINT or SIGTERM
/// that came (0 until one does) in what it returns, for the exit status.
fn hand_to(on_signal: impl Fn(i32) + Send + 'static, hangup: bool) -> Arc<AtomicI32> {
    let signal = Arc::new(AtomicI32::new(0));
    let heard = Arc::clone(&signal);
    let installed = install(
        move |number| {
            if !is_hangup(number) {
                heard.store(number, Ordering::SeqCst);
            }
            on_signal(number);
        },
        hangup,
    );
    if let Err(e) = installed {
        say!("warning: cannot handle SIGINT and SIGTERM ({e}); they end the run at once");
    }
    signal
}

/// Calls `on_signal` (on a thread of its own) with each SIGINT or SIGTERM;
/// from the second one on, the process exits at once. With `hangup`, also
/// with each SIGHUP (which then never ends the process).
#[cfg(unix)]
pub fn install(on_signal: impl Fn(i32) + Send + 'static, hangup: bool) -> std::io::Result<()> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    use signal_hook::iterator::Signals;

    let received = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // In this order: the shutdown looks at the flag before the second
        // action sets it, so only a second signal exits.
        flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&received))?;
        flag::register(signal, Arc::clone(&received))?;
    }
    let mut signals = if hangup {
        Signals::new([SIGINT, SIGTERM, SIGHUP])?
    } else {
        Signals::new([SIGINT, SIGTERM])?
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            on_signal(signal);
        }
    });
    Ok(())
}

/// Elsewhere the default handling stays.
#[cfg(not(unix))]
pub fn install(on_signal: impl Fn(i32) + Send + 'static, hangup: bool) -> std::io::Result<()> {
    let _ = (on_signal, hangup);
    Ok(())
}
