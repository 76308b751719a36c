//! One workload through the `cepheid run` binary: the stream written as JSON
//! lines to a temporary folder, the run timed end to end (parsing, matching,
//! writing the output), its output records counted.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use cepheid_bench::{write_jsonl, Counts, Params, Workload};

use crate::alloc;

/// What one `cepheid run` measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CliRun {
    /// Wall time of the run, in seconds.
    pub secs: f64,
    /// Match and timeout records in its output.
    pub counts: Counts,
    /// The child's peak resident set, sampled while it ran.
    pub rss_peak: Option<u64>,
    /// Size of the JSON-lines input, in bytes.
    pub input_bytes: u64,
}

/// A folder under the system's temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh folder for this process.
    pub fn new() -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(format!("cepheid-bench-{}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the workload's pattern and stream into `dir`, runs `cepheid run`
/// with `--flush-at-end` over them and counts its output.
pub fn measure(
    cepheid: &Path,
    workload: Workload,
    params: &Params,
    dir: &Path,
) -> Result<CliRun, String> {
    let name = workload.name();
    let patterns = dir.join(format!("{name}.cep"));
    let input = dir.join(format!("{name}.jsonl"));
    let output = dir.join(format!("{name}.out.jsonl"));
    fs::write(&patterns, workload.pattern_text())
        .map_err(|e| format!("{}: {e}", patterns.display()))?;
    let file = File::create(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    write_jsonl(workload.events(params), file).map_err(|e| format!("{}: {e}", input.display()))?;
    let input_bytes = fs::metadata(&input).map(|m| m.len()).unwrap_or(0);

    let start = Instant::now();
    let mut child = Command::new(cepheid)
        .arg("run")
        .arg(&patterns)
        .arg("--events")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--flush-at-end", "--no-progress"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", cepheid.display()))?;
    let pid = child.id();
    let mut rss_peak = None;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        rss_peak = alloc::status_field(pid, "VmHWM:").or(rss_peak);
        thread::sleep(Duration::from_millis(5));
    };
    let secs = start.elapsed().as_secs_f64();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    if !status.success() {
        return Err(format!(
            "cepheid run exited with {status}: {}",
            stderr.trim()
        ));
    }
    let counts = count_output(&output)?;
    let _ = fs::remove_file(&input);
    let _ = fs::remove_file(&output);
    Ok(CliRun {
        secs,
        counts,
        rss_peak,
        input_bytes,
    })
}

/// Counts the `match` and `timeout` records of an output file.
fn count_output(path: &Path) -> Result<Counts, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut counts = Counts::default();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        let record: serde_json::Value = match serde_json::from_str(&line) {
            Ok(record) => record,
            Err(_) => continue,
        };
        match record.get("kind").and_then(|k| k.as_str()) {
            Some("match") => counts.matches += 1,
            Some("timeout") => counts.timeouts += 1,
            _ => {}
        }
    }
    Ok(counts)
}
