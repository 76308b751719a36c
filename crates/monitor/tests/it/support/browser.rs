//! Driving Debian's `chromium` headless for the live page's tests, and
//! reading what the page's scripts built: shared by the monitor's own test
//! (`crates/monitor/tests/it/browser.rs`, a `Monitor` filled in the process)
//! and the command's (`tests/cli_page.rs`, a real `cepheid run
//! --metrics`), which includes this file.
//!
//! No browser is a failure, not a skip: [`chromium`] installs it with
//! `.ci/install-browser` (apt) when `/usr/bin/chromium` is missing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The repository's root: the first folder above this package's with
/// `.ci/install-browser` (this crate's, or the root package's).
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join(".ci/install-browser").is_file())
        .expect(".ci/install-browser above the package")
        .to_path_buf()
}

/// The browser, installed by `.ci/install-browser` if missing.
pub fn chromium() -> PathBuf {
    if !Path::new(CHROMIUM).exists() {
        let script = repository().join(".ci/install-browser");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): the page's test needs Debian's chromium \
             (`apt-get install chromium`)",
            script.display(),
            out.status
        );
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "no browser at {CHROMIUM} after .ci/install-browser: the page's test \
         needs Debian's chromium (`apt-get install chromium`)"
    );
    PathBuf::from(CHROMIUM)
}

/// A fresh, empty folder (a browser profile, a screenshot).
pub fn temp_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "cepheid-monitor-{what}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How long one page may take: a hang guard, long enough for a loaded
/// machine.
const PATIENCE: Duration = Duration::from_secs(300);

/// Runs headless chromium with `args` after the common flags (a fresh
/// profile, no network of its own, 5 s of virtual time for the page's
/// scripts), killed after [`PATIENCE`].
pub fn headless(args: &[String]) -> Output {
    let profile = temp_dir("profile");
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts chromium");
    // (its output read while it runs: a page's DOM fills a pipe)
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(PATIENCE) {
        Ok(out) => out.expect("chromium's output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("chromium ran for more than {PATIENCE:?}");
        }
    };
    let _ = std::fs::remove_dir_all(&profile);
    out
}

/// The DOM of `url` once the page's scripts ran (`--dump-dom`), checked
/// whole.
pub fn dump_dom(url: &str) -> String {
    let out = headless(&["--dump-dom".to_string(), url.to_string()]);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed ({}): {}\n{dom}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// A screenshot of `url` in a window of `size` (`"1280,1500"`): the PNG's
/// bytes, checked to be one.
pub fn screenshot(url: &str, size: &str) -> Vec<u8> {
    let dir = temp_dir("shot");
    let png = dir.join("page.png");
    let out = headless(&[
        format!("--screenshot={}", png.display()),
        format!("--window-size={size}"),
        url.to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    bytes
}

/// The width and height of a PNG (its IHDR chunk).
pub fn png_size(png: &[u8]) -> (u32, u32) {
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The text inside `<tag ...>` ... `</tag>` of each element of `tag`
/// found in `html`, tags inside removed.
pub fn cells(html: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i..];
        // `<th` is not `<thead`.
        if !matches!(after.as_bytes().get(open.len()), Some(b'>' | b' ')) {
            rest = &after[open.len()..];
            continue;
        }
        let Some(start) = after.find('>') else { break };
        let Some(end) = after.find(&close) else { break };
        out.push(strip_tags(&after[start + 1..end]));
        rest = &after[end + close.len()..];
    }
    out
}

pub fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => text.push(c),
            _ => {}
        }
    }
    text.replace("&amp;", "&")
        .replace("&gt;", ">")
        .replace("&lt;", "<")
}

/// The element with `id="id"` up to its closing `</tag>`.
pub fn element<'a>(html: &'a str, tag: &str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<{tag} id=\"{id}\""))
        .unwrap_or_else(|| panic!("no <{tag} id=\"{id}\"> in the page:\n{html}"));
    let rest = &html[start..];
    let end = rest.find(&format!("</{tag}>")).expect("closed");
    &rest[..end]
}

/// The text of the fact `<dd id="id">` of the page.
pub fn fact(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no fact {id} in the page:\n{dom}"));
    let rest = &dom[start..];
    strip_tags(&rest[rest.find('>').unwrap() + 1..rest.find("</dd>").unwrap()])
}

/// The rows of the body of `<table id="id">`, each its cells' text.
pub fn rows(dom: &str, id: &str) -> Vec<Vec<String>> {
    let table = element(dom, "table", id);
    let body = &table[table.find("<tbody>").expect("a tbody")..];
    body.split("<tr")
        .skip(1)
        .map(|row| cells(row, "td"))
        .collect()
}

/// The colour of each rule's swatch in the rules table, in order.
pub fn swatches(dom: &str) -> Vec<String> {
    let table = element(dom, "table", "rules");
    table
        .split("class=\"swatch\"")
        .skip(1)
        .filter_map(|rest| {
            let style = &rest[rest.find("background")?..];
            let end = style.find(['"', ';'])?;
            Some(style[..end].to_string())
        })
        .collect()
}

/// A number as the page writes it (`num()`: `toLocaleString("en-US")`).
pub fn page_number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as the page writes them (`bytes()` in page.html).
pub fn page_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut i) = (b as f64, 0);
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// A wall-clock time as the page writes it (`time()` in page.html: ISO
/// 8601 in UTC, a space for the `T`).
pub fn page_time(ms: i64) -> String {
    let text = cepheid_decode::format_rfc3339(ms).replacen('T', " ", 1);
    match text.strip_suffix(".000Z") {
        Some(whole) => format!("{whole}Z"),
        None => text,
    }
}
