//! The report: three Markdown tables (speed, memory, counts), ready to be
//! pasted into `BENCHMARKS.md`.

use std::fmt::Write as _;

use cepheid_bench::Counts;

use crate::cli_run::CliRun;
use crate::in_memory::InMemory;

/// Everything measured for one workload.
pub struct Row {
    /// What the row is called (`ab`, `ab, K=1,000,000`).
    pub label: String,
    /// The in-memory figures.
    pub in_memory: InMemory,
    /// The `cepheid run` figures, or why they are missing; `None` with `--no-cli`.
    pub cli: Option<Result<CliRun, String>>,
}

impl Row {
    /// Every count this row has (engine, baseline, `cepheid run`).
    fn all_counts(&self) -> Vec<Counts> {
        let mut all = vec![self.in_memory.engine];
        all.extend(self.in_memory.baseline);
        if let Some(Ok(cli)) = &self.cli {
            all.push(cli.counts);
        }
        all
    }

    /// Do all counts equal the table's row (or, without one, each other)?
    /// A failed `cepheid run` counts as a disagreement.
    pub fn counts_agree(&self) -> bool {
        let reference = self.in_memory.expected.unwrap_or(self.in_memory.engine);
        let cli_failed = matches!(self.cli, Some(Err(_)));
        !cli_failed && self.all_counts().iter().all(|c| *c == reference)
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
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

/// Events per second for `events` in `secs`.
fn rate(events: u64, secs: f64) -> String {
    if secs > 0.0 {
        thousands((events as f64 / secs) as u64)
    } else {
        "-".to_string()
    }
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Counts as `matches / timeouts`.
fn pair(c: Counts) -> String {
    format!("{} / {}", thousands(c.matches), thousands(c.timeouts))
}

/// One line on the in-memory figures, printed as soon as they are known.
pub fn summary(m: &InMemory) -> String {
    let baseline = match (m.baseline_secs, m.baseline) {
        (Some(secs), Some(counts)) => {
            format!(", baseline {} ev/s {}", rate(m.events, secs), pair(counts))
        }
        _ => String::new(),
    };
    format!(
        "engine {} ev/s {}{baseline}, expected {}",
        rate(m.events, m.engine_secs),
        pair(m.engine),
        m.expected.map_or("(no row)".into(), pair)
    )
}

/// The three tables.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    speed_table(&mut out, rows);
    memory_table(&mut out, rows);
    counts_table(&mut out, rows);
    out
}

/// Events per second in memory and through `cepheid run`.
fn speed_table(out: &mut String, rows: &[Row]) {
    out.push_str("\n| workload | N | K | engine ev/s (in memory) | baseline ev/s | engine / baseline time | `cepheid run` ev/s |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let m = &row.in_memory;
        let baseline = m.baseline_secs.map_or("-".into(), |s| rate(m.events, s));
        let ratio = m
            .baseline_secs
            .map_or("-".into(), |s| format!("{:.2}", m.engine_secs / s));
        let cli = match &row.cli {
            Some(Ok(c)) => rate(m.events, c.secs),
            Some(Err(e)) => format!("failed: {e}"),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            thousands(m.events),
            thousands(m.keys),
            rate(m.events, m.engine_secs),
            baseline,
            ratio,
            cli
        );
    }
}

/// Heap and resident memory, and bytes per live run.
fn memory_table(out: &mut String, rows: &[Row]) {
    out.push_str("\n| workload | live keys (end) | live runs (end) | events held | engine heap (end) | bytes / live run | engine heap peak | baseline heap peak | process RSS peak | `cepheid run` RSS peak |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let m = &row.in_memory;
        let per_run = match m.baseline_live_runs {
            Some(runs) if runs > 0 => thousands(m.engine_heap / runs),
            _ => "-".into(),
        };
        let cli_rss = match &row.cli {
            Some(Ok(CliRun {
                rss_peak: Some(b), ..
            })) => mib(*b),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            thousands(m.live_partitions),
            m.baseline_live_runs.map_or("-".into(), thousands),
            thousands(m.stored_events),
            mib(m.engine_heap),
            per_run,
            mib(m.engine_heap_peak),
            m.baseline_heap_peak.map_or("-".into(), mib),
            m.process_rss_peak.map_or("-".into(), mib),
            cli_rss
        );
    }
}

/// Matches / timeouts from every source, against the table.
fn counts_table(out: &mut String, rows: &[Row]) {
    out.push_str("\n| workload | engine | baseline | `cepheid run` | expected | verdict |\n");
    out.push_str("|---|---:|---:|---:|---:|---|\n");
    for row in rows {
        let m = &row.in_memory;
        let cli = match &row.cli {
            Some(Ok(c)) => pair(c.counts),
            Some(Err(_)) => "failed".into(),
            None => "-".into(),
        };
        let verdict = if row.counts_agree() { "ok" } else { "MISMATCH" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.label,
            pair(m.engine),
            m.baseline.map_or("-".into(), pair),
            cli,
            m.expected.map_or("(no row)".into(), pair),
            verdict
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
