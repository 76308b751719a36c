//! Changing the rules of a running `cepheid run` (`docs/dynamic-rules.md`,
//! "Rules in the stream" and "Rules on disk"): loading a control record's
//! rules or the command line's pattern paths again, with the diagnostics of
//! `cepheid check`, and `--watch`, which asks for a reload when a pattern
//! file changes (SIGHUP asks through the `signals` module).
//!
//! The engine's change itself (`Engine::set_rules`) is made by the run on
//! its main thread, in input order (`run.rs`).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::Duration;

use cepheid_engine::engine::ReloadPolicy;
use cepheid_syntax::Loaded;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::input::{Control, Message, Reload};

/// How long the pattern files must stay quiet before a reload: an editor's
/// save is often several events (write, rename, attributes).
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// `--reload-policy`: what becomes of a changed pattern's partial matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyArg {
    /// They go on under the old version to their match or timeout.
    #[default]
    Drain,
    /// They are dropped (and counted) at the change.
    Restart,
}

impl From<PolicyArg> for ReloadPolicy {
    fn from(policy: PolicyArg) -> ReloadPolicy {
        match policy {
            PolicyArg::Drain => ReloadPolicy::Drain,
            PolicyArg::Restart => ReloadPolicy::Restart,
        }
    }
}

/// The rule changes of a run, for the summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reloads {
    /// Rule sets put in force.
    pub applied: u64,
    /// Rule sets that did not load or compile (the old rules went on).
    pub refused: u64,
}

impl Reloads {
    /// The summary's words for them (empty when there were none).
    pub fn summary(&self, discarded: u64) -> String {
        let mut text = String::new();
        if self.applied + self.refused > 0 {
            let s = if self.applied == 1 { "" } else { "s" };
            text = format!(", {} rule reload{s}", self.applied);
            if self.refused > 0 {
                text += &format!(", {} refused (the old rules kept)", self.refused);
            }
        }
        if discarded > 0 {
            text += &format!(", {discarded} partial matches discarded by reloads");
        }
        text
    }
}

/// The rules of a control record at line `line_no` of the input named
/// `origin`, with their diagnostics. Inline source is named
/// `ORIGIN:LINE ($rules)` in them; a `$rules_file` path (a file or a
/// folder, relative to the working folder) by its path.
pub fn load_control(control: &Control, origin: &str, line_no: u64) -> Loaded {
    match control {
        Control::Source(text) => {
            cepheid_engine::rules::load_str(&format!("{origin}:{line_no} ($rules)"), text)
        }
        Control::File(path) => cepheid_engine::rules::load_paths(std::slice::from_ref(path)),
    }
}

/// What a control record is called in messages.
pub fn describe(control: &Control) -> String {
    match control {
        Control::Source(_) => "`$rules`".to_string(),
        Control::File(path) => format!("`$rules_file` {}", path.display()),
    }
}

/// Watches the pattern files and folders `paths` and sends
/// [`Message::Reload`] once they have been quiet for [`DEBOUNCE`] after a
/// change. A file is watched through its folder (editors save by writing
/// another file and renaming it over the old one); a folder for its
/// `*.cep` files. The watch lasts as long as the returned watcher.
pub fn watch(paths: &[PathBuf], tx: SyncSender<Message>) -> notify::Result<RecommendedWatcher> {
    // (folder, the file's name or `None` for every `*.cep` in it)
    let mut targets: Vec<(PathBuf, Option<std::ffi::OsString>)> = Vec::new();
    for path in paths {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let target = if absolute.is_dir() {
            (absolute, None)
        } else {
            let folder = absolute
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            (folder, absolute.file_name().map(|n| n.to_os_string()))
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let relevant_targets = targets.clone();
    let relevant = move |path: &Path| {
        relevant_targets.iter().any(|(folder, name)| {
            let inside = path.parent() == Some(folder.as_path());
            match name {
                Some(name) => inside && path.file_name() == Some(name.as_os_str()),
                None => {
                    path == folder.as_path()
                        || (inside && path.extension().is_some_and(|x| x == "cep"))
                }
            }
        })
    };
    let (changed, changes) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let news = match event {
            // Reading the files (our own reload) is no news.
            Ok(event) => {
                !matches!(event.kind, EventKind::Access(_))
                    && (event.need_rescan() || event.paths.iter().any(|p| relevant(p)))
            }
            Err(_) => true,
        };
        if news {
            let _ = changed.send(());
        }
    })?;
    let mut folders: Vec<&PathBuf> = targets.iter().map(|(folder, _)| folder).collect();
    folders.dedup();
    for folder in folders {
        watcher.watch(folder, RecursiveMode::NonRecursive)?;
    }
    // Hand-written debounce (a dozen lines; the debouncer crates bring a
    // thread and a dependency of their own for the same thing): after a
    // change, wait until none came for `DEBOUNCE`, then ask once.
    std::thread::spawn(move || {
        while changes.recv().is_ok() {
            loop {
                match changes.recv_timeout(DEBOUNCE) {
                    Ok(()) => continue,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            if tx.send(Message::Reload(Reload::Changed)).is_err() {
                return;
            }
        }
    });
    Ok(watcher)
}
