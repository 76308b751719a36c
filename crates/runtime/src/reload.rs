//! Changing the rules of a running `cepheid run` (`docs/dynamic-rules.md`,
//! "Rules in the stream" and "Rules on disk"): loading a control record's
//! rules or the command line's pattern paths again, with the diagnostics of
//! `cepheid check`, and `--watch`, which asks for a reload when a pattern
//! file changes (SIGHUP asks through the `signals` module).
//!
//! The engine's change itself (`Engine::set_rules`) is made by the run on
//! its calling thread, in input order (`driver/session.rs`).

use std::path::{Path, PathBuf};
#[cfg(feature = "watch")]
use std::sync::mpsc::{self, RecvTimeoutError};
#[cfg(feature = "watch")]
use std::time::Duration;

use cepheid_syntax::Loaded;
#[cfg(feature = "watch")]
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::source::{Control, ControlRules, RulesRead};
#[cfg(feature = "watch")]
use crate::source::{Message, Reload, Tx};

/// How long the pattern files must stay quiet before a reload: an editor's
/// save is often several events (write, rename, attributes).
#[cfg(feature = "watch")]
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// The rule changes of a run, for the summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reloads {
    /// Rule sets put in force.
    pub applied: u64,
    /// Rule sets that did not load or compile (the old rules went on).
    pub refused: u64,
    /// Records of a source's rules stream read after event time had
    /// passed their time (applied at once).
    pub late: u64,
    /// Reference files read again and not applied (`lists::Refreshed`:
    /// empty, binary, or giving no entry where they had some).
    pub lists_not_applied: u64,
}

/// What the operator lets the event stream do to the rules
/// (`docs/dynamic-rules.md`, "Rules in the stream"): nothing unless
/// `--rules-from-stream`; `$rules_file` only with `--rules-dir DIR`, and
/// only for files inside DIR.
#[derive(Clone, Debug, Default)]
pub struct StreamRules {
    /// `--rules-from-stream`: control records are honoured.
    pub enabled: bool,
    /// `--rules-dir DIR`: the folder `$rules_file` paths are confined to.
    pub dir: Option<PathBuf>,
}

/// Most `.cep` files a `$rules_file` folder may hold.
pub const MAX_STREAM_FILES: usize = 256;

/// The rules of a control record at line `line_no` of the input named
/// `origin`, as the language loads them (with its diagnostics; compiled
/// once, where they are applied), or why the record is refused
/// (rule changes from the stream off, a path outside `--rules-dir`, not a
/// regular file, too large: never anything of the file's content). Inline
/// source is named `ORIGIN:LINE ($rules)` in the diagnostics; a
/// `$rules_file` path (a file or a folder, relative to `--rules-dir`) by
/// its path.
pub(crate) fn load_control(
    control: &Control,
    allowed: &StreamRules,
    name: &str,
) -> Result<Loaded, String> {
    if !allowed.enabled {
        return Err(
            "rule changes from the event stream are off (`Config::rules_from_stream` turns them on)"
                .to_string(),
        );
    }
    match &control.rules {
        ControlRules::Source(text) => {
            Ok(cepheid_syntax::load_str(&format!("{name} ($rules)"), text))
        }
        ControlRules::File(path) => match &allowed.dir {
            None => Err(
                "`$rules_file` records are off (`Config::rules_dir` DIR allows the files in DIR)"
                    .to_string(),
            ),
            Some(dir) => load_confined(dir, path),
        },
        ControlRules::List(_) => Err("a `$list` record changes a list, not the rules".to_string()),
    }
}

/// Loads `path` (relative to `dir`, or absolute) when it is a regular
/// `.cep` file or a folder of them inside `dir`, once every symbolic link
/// is resolved. A FIFO, a device or a socket is refused before it is
/// opened (and opened without blocking, so that one put in its place in
/// between is refused too, not waited on); each file is limited to
/// [`cepheid_syntax::MAX_FILE_SIZE`], a folder to [`MAX_STREAM_FILES`] files.
pub(crate) fn load_confined(dir: &Path, path: &Path) -> Result<Loaded, String> {
    let root = dir.canonicalize().map_err(|e| {
        format!(
            "cannot open `Config::rules_dir` {}: {}",
            dir.display(),
            e.kind()
        )
    })?;
    let real = root
        .join(path)
        .canonicalize()
        .map_err(|e| format!("cannot open it in `Config::rules_dir`: {}", e.kind()))?;
    if !real.starts_with(&root) {
        return Err("it is outside `Config::rules_dir`".to_string());
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("cannot open it: {}", e.kind()))?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if meta.is_dir() {
        let entries =
            std::fs::read_dir(&real).map_err(|e| format!("cannot list it: {}", e.kind()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list it: {}", e.kind()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".cep") {
                continue;
            }
            let shown = path.join(&*name).display().to_string();
            let inner = entry
                .path()
                .canonicalize()
                .map_err(|e| format!("cannot open {shown}: {}", e.kind()))?;
            if !inner.starts_with(&root) {
                return Err(format!("{shown} is outside `Config::rules_dir`"));
            }
            files.push((shown, inner));
            if files.len() > MAX_STREAM_FILES {
                return Err(format!(
                    "the folder holds more than {MAX_STREAM_FILES} `.cep` files"
                ));
            }
        }
        if files.is_empty() {
            return Err("the folder holds no `.cep` file".to_string());
        }
        files.sort();
    } else {
        files.push((path.display().to_string(), real));
    }
    let mut loaded = Loaded::default();
    for (shown, file) in files {
        let bytes = read_regular(&file).map_err(|why| {
            if shown == path.display().to_string() {
                why
            } else {
                format!("{shown}: {why}")
            }
        })?;
        loaded.add_bytes(&shown, &bytes);
    }
    Ok(loaded)
}

/// The bytes of `path` when it is a regular file of at most
/// [`cepheid_syntax::MAX_FILE_SIZE`] bytes; otherwise why not (never its content).
fn read_regular(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let regular_only = "it is not a regular file (a FIFO, a device or a socket is never read)";
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open it: {}", e.kind()))?;
    if !meta.is_file() {
        return Err(regular_only.to_string());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Replaced by a FIFO since the check above, the open does not wait
        // for a writer (and the check below refuses it).
        let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW;
        options.custom_flags(flags.bits() as i32);
    }
    let file = options
        .open(path)
        .map_err(|e| format!("cannot open it: {}", e.kind()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read it: {}", e.kind()))?;
    if !meta.is_file() {
        return Err(regular_only.to_string());
    }
    let limit = cepheid_syntax::MAX_FILE_SIZE as u64;
    if meta.len() > limit {
        return Err(format!(
            "it is larger than 1 MiB ({limit} bytes), the limit for pattern files"
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {}", e.kind()))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "it is larger than 1 MiB ({limit} bytes), the limit for pattern files"
        ));
    }
    Ok(bytes)
}

/// The first empty (0-byte) pattern file among `paths` (a file, or a
/// folder's `*.cep` files), if any. An editor that rewrites a file in
/// place empties it for a moment: a reload from disk then is not a
/// decision to remove its rules (issue 26), and waits for the file to be
/// written (its next change asks for a reload again).
pub fn empty_file(paths: &[PathBuf]) -> Option<PathBuf> {
    let empty = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0);
    for path in paths {
        if path.is_dir() {
            let Ok(entries) = std::fs::read_dir(path) else {
                continue;
            };
            let found = entries.flatten().map(|e| e.path()).find(|p| {
                let hidden = p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                !hidden && p.extension().is_some_and(|x| x == "cep") && empty(p)
            });
            if found.is_some() {
                return found;
            }
        } else if empty(path) {
            return Some(path.clone());
        }
    }
    None
}

/// `loaded` (a change of rules, named `where_` in messages) checked as
/// the engine will compile it: its diagnostics said to `say` (what the
/// compiler rejects with the rest, in its place in the text), and the
/// rules, or why they are refused.
pub(crate) fn check(
    mut loaded: Loaded,
    where_: &str,
    config: &crate::Config,
    say: &mut dyn FnMut(crate::Notice),
) -> RulesRead {
    let texts = (loaded.sources.iter())
        .map(|source| (source.name.clone(), source.text.clone()))
        .collect();
    let checked = cepheid_engine::rules::check(&mut loaded);
    let diagnostics = loaded.render();
    if !diagnostics.is_empty() {
        say(crate::Notice::text(crate::Level::Warning, diagnostics));
    }
    let watch = crate::FieldWatch::from_loaded(&loaded);
    match cepheid_engine::Rules::from_checked(loaded, checked) {
        Ok(rules)
            if crate::conflict::shadow_unplaced(config, rules.patterns().iter()).is_some() =>
        {
            let pattern = crate::conflict::shadow_unplaced(config, rules.patterns().iter());
            RulesRead::Refused(format!(
                "cepheid: {where_}: refused: {}; the old rules go on",
                crate::conflict::shadow_without_output(&pattern.unwrap_or_default())
            ))
        }
        Ok(rules) => RulesRead::Checked {
            rules,
            texts,
            watch,
        },
        // (its errors said above)
        Err(_) => RulesRead::Refused(format!(
            "cepheid: {where_}: the new rules have errors; the old rules go on"
        )),
    }
}

/// What a control record is called in messages.
pub fn describe(control: &Control) -> String {
    match &control.rules {
        ControlRules::Source(_) => "`$rules`".to_string(),
        ControlRules::File(path) => format!("`$rules_file` {}", path.display()),
        ControlRules::List(record) => format!("`$list` {}", record.list),
    }
}

/// Watches the pattern files and folders `paths` and sends
/// [`Message::Reload`] once they have been quiet for [`DEBOUNCE`] after a
/// change. A file is watched through its folder (editors save by writing
/// another file and renaming it over the old one); a folder for its
/// `*.cep` files. The watch lasts as long as the returned watcher.
#[cfg(feature = "watch")]
pub fn watch(paths: &[PathBuf], tx: Tx) -> notify::Result<RecommendedWatcher> {
    watch_for(paths, tx, || Message::Reload(Reload::Changed))
}

/// Watches `paths` as [`watch`] does and sends `message()` once they have
/// been quiet for [`DEBOUNCE`] after a change (the reference files of
/// [`Config::lists`](crate::Config::lists): [`Message::ListsChanged`]).
#[cfg(feature = "watch")]
pub(crate) fn watch_for(
    paths: &[PathBuf],
    tx: Tx,
    message: fn() -> Message,
) -> notify::Result<RecommendedWatcher> {
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
            if tx.send(message()).is_err() {
                return;
            }
        }
    });
    Ok(watcher)
}

/// What a run says of a change of rules applied at `place` (what asked
/// for it: a control record's place, `SIGHUP`, the watched files), on
/// either executor: `lines`, the changes, one indented line each.
pub fn reloaded(place: &str, lines: &str) -> crate::Notice {
    let text = format!("cepheid: {place}: rules reloaded:\n{lines}");
    crate::Notice::text(crate::Level::Info, text)
}

/// What a run says of a change of rules at `place` that it did not apply
/// (`why`: the new rules "do not compile"...), on either executor.
pub fn not_reloaded(place: &str, why: &str) -> String {
    format!("cepheid: {place}: the new rules {why}; the old rules go on")
}

/// Says a change of rules the run refused (`why`, its sentence), on
/// either executor: a warning, and to a report that observes the run,
/// [`RunEvent::ReloadRefused`](crate::RunEvent::ReloadRefused) first.
pub(crate) fn say_refused(report: &mut dyn crate::Report, why: &str) {
    if report.observes() {
        report.event(&crate::RunEvent::ReloadRefused { why });
    }
    report.notice(crate::Notice::line(crate::Level::Warning, why));
}

/// A change of rules read for an executor's workers (`where_` in
/// messages, and the rules or why not: `Control::read`, `Reload::read`,
/// loaded, compiled and checked as one engine reads them) as the
/// executor's [`Change`](crate::executor::Change) at `offset` of its
/// input, asked for by `origin` (its audit record's); `None` when not
/// now (said). A pattern the executor cannot run (`refuses`: why) refuses
/// the change. One refused is said to `report` here, once (counted by
/// the caller: [`Change::refused`](crate::executor::Change::refused)),
/// and is handed on all the same, changing nothing, to make its audit
/// record at its point of event time.
pub fn for_executor(
    (where_, read): (String, RulesRead),
    (offset, origin): (u64, crate::audit::Origin),
    refuses: &dyn Fn(&cepheid_core::pattern::Pattern) -> Option<String>,
    report: &mut dyn crate::Report,
) -> Option<crate::executor::Change> {
    use crate::executor::Change;
    let mut refused = |why: String| {
        say_refused(report, &why);
        Some(Change::refusal(offset, where_.clone(), &origin, &why))
    };
    match read {
        RulesRead::Checked { rules, texts, .. } => {
            match rules.patterns().iter().find_map(refuses) {
                Some(why) => refused(format!(
                    "cepheid: {where_}: the new rules are refused: {why}; the old rules go on"
                )),
                None => Some(Change::rules(offset, where_.clone(), texts, &origin, rules)),
            }
        }
        RulesRead::Refused(why) => refused(why),
        RulesRead::Later(why) => {
            report.notice(crate::Notice::line(crate::Level::Warning, why));
            None
        }
    }
}
