//! The status as Prometheus text (OpenMetrics 1.0), through
//! `prometheus-client`: a [`Collector`] that encodes a [`Status`] at each
//! scrape. `docs/metrics.md` lists every metric.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::status::{HttpStatus, Status};

/// The content type of [`encode`]'s text (what `/metrics` answers with).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The status as OpenMetrics text, ending with `# EOF`. Counters end in
/// `_total`, units in the name (`_seconds`, `_bytes`); per-pattern
/// metrics carry the label `pattern`, per-worker ones `worker`; a level
/// the run does not know (no watermark yet, no followed file, no
/// checkpoint) is left out rather than given as 0.
pub fn encode(status: &Status) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(status.clone_counts())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The counts of a status, without its history (what a scrape needs).
#[derive(Debug)]
struct Snapshot(Status);

impl Status {
    /// A copy without the recent records, graphs and series.
    fn clone_counts(&self) -> Status {
        let mut copy = Status {
            now_ms: self.now_ms,
            updated_ms: self.updated_ms,
            run: self.run.clone(),
            patterns: Vec::with_capacity(self.patterns.len()),
            workers: self.workers.clone(),
            series: Default::default(),
            limits: self.limits,
            hide_events: self.hide_events,
            http: self.http,
        };
        copy.patterns
            .extend(self.patterns.iter().map(|p| p.counts_only()));
        copy
    }
}

/// The monitor's own server: its limit and what it refused.
fn encode_http(e: &mut DescriptorEncoder, http: &HttpStatus) -> fmt::Result {
    single(
        e,
        "cepheid_http_connections",
        "Connections the monitor's HTTP server took.",
        None,
        Value::Counter(http.connections),
    )?;
    single(
        e,
        "cepheid_http_connections_refused",
        "Connections refused (503) because the server held its limit of connections.",
        None,
        Value::Counter(http.refused),
    )?;
    single(
        e,
        "cepheid_http_requests_too_large",
        "Requests whose head was longer than the server takes (431).",
        None,
        Value::Counter(http.too_large),
    )?;
    single(
        e,
        "cepheid_http_requests_timed_out",
        "Connections closed because no whole request came in time.",
        None,
        Value::Counter(http.timed_out),
    )?;
    single(
        e,
        "cepheid_http_open_connections",
        "Connections the server holds now, answered or waiting.",
        None,
        gauge_u64(http.open_connections),
    )?;
    single(
        e,
        "cepheid_http_max_connections",
        "Connections the server holds at most.",
        None,
        gauge_u64(http.max_connections),
    )
}

/// A counter (`NAME_total`) or a gauge without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Value,
) -> fmt::Result {
    let metric = value.metric_type();
    let family = encoder.encode_descriptor(name, help, unit, metric)?;
    value.encode(family)
}

/// A metric per pattern or per worker: `label="..."` on each sample.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    label: &str,
    items: impl IntoIterator<Item = (String, Value)>,
) -> fmt::Result {
    let items: Vec<(String, Value)> = items.into_iter().collect();
    let Some((_, first)) = items.first() else {
        return Ok(());
    };
    let mut family = encoder.encode_descriptor(name, help, unit, first.metric_type())?;
    for (key, value) in &items {
        let labels = [(label, key.as_str())];
        value.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A metric per pattern: `pattern="..."` on each sample, and
/// `shadow="true"` on those of a `shadow` pattern (`docs/rule-lab.md`):
/// a query of the live rules' alerts leaves them out with
/// `{shadow!="true"}`.
fn per_pattern(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    patterns: &[crate::status::PatternStatus],
    f: fn(&crate::status::PatternStatus) -> Value,
) -> fmt::Result {
    let Some(first) = patterns.first() else {
        return Ok(());
    };
    let mut family = encoder.encode_descriptor(name, help, None, f(first).metric_type())?;
    for p in patterns {
        if p.shadow {
            let labels = [("pattern", p.name.as_str()), ("shadow", "true")];
            f(p).encode(family.encode_family(&labels)?)?;
        } else {
            let labels = [("pattern", p.name.as_str())];
            f(p).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// One sample's value.
#[derive(Clone, Copy)]
enum Value {
    Counter(u64),
    Gauge(f64),
    IntGauge(i64),
}

impl Value {
    fn metric_type(self) -> MetricType {
        match self {
            Value::Counter(_) => MetricType::Counter,
            Value::Gauge(_) | Value::IntGauge(_) => MetricType::Gauge,
        }
    }

    fn encode(self, encoder: prometheus_client::encoding::MetricEncoder) -> fmt::Result {
        match self {
            Value::Counter(v) => ConstCounter::new(v).encode(encoder),
            Value::Gauge(v) => ConstGauge::new(v).encode(encoder),
            Value::IntGauge(v) => ConstGauge::new(v).encode(encoder),
        }
    }
}

/// The lists' and indicators' metrics, for a run whose rules declare any
/// (none of them otherwise: a run without lists or indicators shows the
/// metrics it showed before they existed).
fn encode_memory(e: &mut DescriptorEncoder, status: &crate::status::MemoryStatus) -> fmt::Result {
    let m = &status.counts;
    if !status.lists.is_empty() {
        family(
            e,
            "cepheid_list_entries",
            "Entries the reference list holds now.",
            None,
            "list",
            (status.lists.iter()).map(|l| (l.name.clone(), gauge_u64(l.entries))),
        )?;
        single(
            e,
            "cepheid_list_changes",
            "List changes applied (reference files, the library, then writes).",
            None,
            Value::Counter(m.list_changes),
        )?;
        single(
            e,
            "cepheid_list_changes_late",
            "List changes for a time at or below the watermark, applied at once.",
            None,
            Value::Counter(m.late_changes),
        )?;
        family(
            e,
            "cepheid_list_adds_refused",
            "Adds refused: the list held its limit, or no list can hold the value.",
            None,
            "why",
            [
                ("limit".to_string(), Value::Counter(m.refused_entries)),
                ("value".to_string(), Value::Counter(m.bad_entries)),
            ],
        )?;
        // (once a shadow rule wrote: `docs/semantics.md`, "Shadow rules")
        if m.shadow_changes > 0 {
            single(
                e,
                "cepheid_list_shadow_entries",
                "Entries shadow rules' writes added to the lists' shadow copies, held now.",
                None,
                gauge_u64(m.shadow_entries),
            )?;
            single(
                e,
                "cepheid_list_shadow_changes",
                "Shadow rules' writes made to the lists' shadow copies.",
                None,
                Value::Counter(m.shadow_changes),
            )?;
        }
    }
    if status.indicators > 0 {
        single(
            e,
            "cepheid_indicator_entries",
            "Events inside the rolling indicators' windows now, over all indicators.",
            None,
            gauge_u64(m.indicator_entries),
        )?;
        single(
            e,
            "cepheid_indicator_groups",
            "Groups of the rolling indicators now, over all indicators.",
            None,
            gauge_u64(m.indicator_groups),
        )?;
        family(
            e,
            "cepheid_indicator_events_left_out",
            "Events an indicator's condition took but left out: a value not a number, no usable group, or the limit of entries.",
            None,
            "why",
            [
                ("not_numeric".to_string(), Value::Counter(m.non_numeric)),
                ("no_group".to_string(), Value::Counter(m.unkeyed)),
                ("limit".to_string(), Value::Counter(m.refused_events)),
            ],
        )?;
    }
    Ok(())
}

fn gauge_u64(v: u64) -> Value {
    Value::IntGauge(i64::try_from(v).unwrap_or(i64::MAX))
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        let run = &s.run;
        let seconds = Some(&Unit::Seconds);
        let bytes = Some(&Unit::Bytes);
        single(
            &mut e,
            "cepheid_events_read",
            "Events read from the sources, malformed lines included.",
            None,
            Value::Counter(run.events_read),
        )?;
        single(
            &mut e,
            "cepheid_events_malformed",
            "Lines that could not be decoded.",
            None,
            Value::Counter(run.malformed),
        )?;
        single(
            &mut e,
            "cepheid_events_late",
            "Events behind the watermark, sent to the late output.",
            None,
            Value::Counter(run.late),
        )?;
        single(
            &mut e,
            "cepheid_runs_discarded",
            "Partial matches discarded by changes of the rules.",
            None,
            Value::Counter(run.discarded_runs),
        )?;
        single(
            &mut e,
            "cepheid_watermarks_forced",
            "Times the limit on waiting events moved the watermark up.",
            None,
            Value::Counter(run.forced_watermarks),
        )?;
        single(
            &mut e,
            "cepheid_field_warnings",
            "Warnings about fields that no event has carried.",
            None,
            Value::Counter(run.field_warnings),
        )?;

        encode_memory(&mut e, &run.memory)?;

        let patterns = &s.patterns;
        per_pattern(
            &mut e,
            "cepheid_pattern_events",
            "Events that reached the pattern (processed, with a usable key).",
            patterns,
            |p| Value::Counter(p.events),
        )?;
        per_pattern(
            &mut e,
            "cepheid_matches",
            "Complete matches of the pattern.",
            patterns,
            |p| Value::Counter(p.matches),
        )?;
        per_pattern(
            &mut e,
            "cepheid_timeouts",
            "Timed-out partial matches of the pattern.",
            patterns,
            |p| Value::Counter(p.timeouts),
        )?;
        per_pattern(
            &mut e,
            "cepheid_live_partial_matches",
            "Partial matches the pattern holds now, over all keys.",
            patterns,
            |p| gauge_u64(p.live_runs),
        )?;
        per_pattern(
            &mut e,
            "cepheid_runs_dropped",
            "Partial matches of the pattern dropped by the limit per key or over all keys.",
            patterns,
            |p| Value::Counter(p.dropped_runs),
        )?;
        per_pattern(
            &mut e,
            "cepheid_runs_capped",
            "Of the dropped partial matches, those dropped by the limit over all keys.",
            patterns,
            |p| Value::Counter(p.capped_runs),
        )?;
        per_pattern(
            &mut e,
            "cepheid_rule_version",
            "The pattern's version: 1 when added, +1 per replacement.",
            patterns,
            |p| Value::IntGauge(i64::from(p.version)),
        )?;

        if let Some(w) = run.watermark_ms {
            single(
                &mut e,
                "cepheid_watermark_timestamp",
                "The watermark, in event time (Unix seconds).",
                seconds,
                Value::Gauge(w as f64 / 1000.0),
            )?;
        }
        if let Some(lag) = run.watermark_lag_seconds {
            single(
                &mut e,
                "cepheid_watermark_lag",
                "How far the watermark is behind the wall clock.",
                seconds,
                Value::Gauge(lag),
            )?;
        }
        if let Some(lag) = run.source_lag_bytes {
            single(
                &mut e,
                "cepheid_source_lag",
                "Bytes behind the end of the followed file.",
                bytes,
                gauge_u64(lag),
            )?;
        }
        if let Some(lag) = run.consumer_lag {
            single(
                &mut e,
                "cepheid_consumer_lag_records",
                "Records behind the end of the source's partitions.",
                None,
                gauge_u64(lag),
            )?;
        }
        if !run.consumer_lag_partitions.is_empty() {
            let mut family = e.encode_descriptor(
                "cepheid_partition_lag_records",
                "Records behind the end of the partition.",
                None,
                MetricType::Gauge,
            )?;
            for lag in &run.consumer_lag_partitions {
                let partition = lag.partition.to_string();
                let labels = [
                    ("topic", lag.topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                gauge_u64(lag.records).encode(family.encode_family(&labels)?)?;
            }
        }
        single(
            &mut e,
            "cepheid_live_runs",
            "Partial matches held over all patterns and keys.",
            None,
            gauge_u64(run.live_runs),
        )?;
        single(
            &mut e,
            "cepheid_waiting_events",
            "Events waiting for the watermark.",
            None,
            gauge_u64(run.waiting_events),
        )?;
        single(
            &mut e,
            "cepheid_stored_events",
            "Events held by partial matches.",
            None,
            gauge_u64(run.stored_events),
        )?;
        if let Some(b) = run.state_bytes {
            single(
                &mut e,
                "cepheid_state",
                "Bytes of state held.",
                bytes,
                gauge_u64(b),
            )?;
        }

        let c = &run.checkpoint;
        single(
            &mut e,
            "cepheid_checkpoints",
            "Checkpoints written.",
            None,
            Value::Counter(c.completed),
        )?;
        single(
            &mut e,
            "cepheid_checkpoint_failures",
            "Checkpoints that failed.",
            None,
            Value::Counter(c.failures),
        )?;
        if let Some(d) = c.last_duration_seconds {
            single(
                &mut e,
                "cepheid_checkpoint_duration",
                "How long writing the last checkpoint took.",
                seconds,
                Value::Gauge(d),
            )?;
        }
        if let Some(b) = c.last_size_bytes {
            single(
                &mut e,
                "cepheid_checkpoint_size",
                "The last checkpoint's size.",
                bytes,
                gauge_u64(b),
            )?;
        }
        if let Some(a) = c.age_seconds {
            single(
                &mut e,
                "cepheid_checkpoint_age",
                "Time since the last checkpoint was written.",
                seconds,
                Value::Gauge(a),
            )?;
        }
        single(
            &mut e,
            "cepheid_reloads",
            "Changes of the rules applied.",
            None,
            Value::Counter(run.reloads.applied),
        )?;
        single(
            &mut e,
            "cepheid_reloads_refused",
            "Changes of the rules refused (the rules in force kept).",
            None,
            Value::Counter(run.reloads.refused),
        )?;
        single(
            &mut e,
            "cepheid_reloads_ahead",
            "Records of a rules stream further ahead of event time than the run's bound when read, applied then instead of at their time.",
            None,
            Value::Counter(run.reloads.ahead),
        )?;
        single(
            &mut e,
            "cepheid_rules_waiting",
            "Records of a rules stream waiting for event time to reach their time.",
            None,
            gauge_u64(run.reloads.waiting.map_or(0, |w| w.records)),
        )?;

        if let Some(http) = &s.http {
            encode_http(&mut e, http)?;
        }

        let workers = || s.workers.iter();
        let per_worker = |f: fn(&crate::status::WorkerStatus) -> Value| {
            workers().map(move |w| (w.id.to_string(), f(w)))
        };
        family(
            &mut e,
            "cepheid_worker_events",
            "Events the worker's engines processed.",
            None,
            "worker",
            per_worker(|w| Value::Counter(w.events)),
        )?;
        family(
            &mut e,
            "cepheid_worker_matches",
            "Complete matches the worker found.",
            None,
            "worker",
            per_worker(|w| Value::Counter(w.matches)),
        )?;
        family(
            &mut e,
            "cepheid_worker_live_partial_matches",
            "Partial matches the worker holds.",
            None,
            "worker",
            per_worker(|w| gauge_u64(w.live_runs)),
        )?;
        let watermarks = s.workers.iter().filter_map(|w| {
            w.watermark_ms
                .map(|t| (w.id.to_string(), Value::Gauge(t as f64 / 1000.0)))
        });
        family(
            &mut e,
            "cepheid_worker_watermark_timestamp",
            "The worker's watermark, in event time (Unix seconds).",
            seconds,
            "worker",
            watermarks,
        )?;
        Ok(())
    }
}
