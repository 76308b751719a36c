//! The front's metrics (`/metrics`), through prometheus-client as the
//! monitor's are: OpenMetrics 1.0 text, counters ending in `_total`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The latency buckets (seconds): 25 µs to 1 s, every 100 µs up to a
/// millisecond so that a p99 under 1 ms can be read.
pub(crate) const BUCKETS: [f64; 24] = [
    0.000_025, 0.000_05, 0.000_075, 0.000_1, 0.000_15, 0.000_2, 0.000_3, 0.000_4, 0.000_5, 0.000_6,
    0.000_7, 0.000_8, 0.000_9, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DecisionLabels {
    pub scene: Arc<str>,
    pub outcome: Arc<str>,
    pub degraded: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: &'static str,
    pub status: u16,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Every metric of the front, shared by its connections.
pub(crate) struct Metrics {
    registry: Registry,
    pub decisions: Family<DecisionLabels, Histogram, fn() -> Histogram>,
    pub requests: Family<RequestLabels, Counter>,
    pub cancelled: Counter,
    pub in_flight: Gauge,
    pub panics: Counter,
    pub connections: Counter,
    pub open_connections: Gauge,
    pub refused: Counter,
    pub timed_out: Counter,
    pub tls_failures: Counter,
    pub unauthorized: Counter,
}

impl Metrics {
    pub fn new(max_connections: usize) -> Metrics {
        let mut registry = Registry::default();
        let decisions =
            Family::<DecisionLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                histogram as fn() -> Histogram,
            );
        registry.register_with_unit(
            "cepheid_serve_decision",
            "Server time of a decision answered 200, from its request's head read to its answer written, by scene, outcome and whether it was degraded",
            Unit::Seconds,
            decisions.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "cepheid_serve_http_requests",
            "Requests answered, by route (the document's path, `other` for none) and status",
            requests.clone(),
        );
        let cancelled = Counter::default();
        registry.register(
            "cepheid_serve_http_requests_cancelled",
            "Requests whose client went away before their answer was written",
            cancelled.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "cepheid_serve_http_requests_in_flight",
            "Requests read and not yet answered",
            in_flight.clone(),
        );
        let panics = Counter::default();
        registry.register(
            "cepheid_serve_http_panics",
            "Requests answered 500 because their handler panicked",
            panics.clone(),
        );
        let unauthorized = Counter::default();
        registry.register(
            "cepheid_serve_http_unauthorized",
            "Requests refused 401: no token, or an unknown one",
            unauthorized.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "cepheid_serve_http_connections",
            "Connections accepted and served",
            connections.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "cepheid_serve_http_open_connections",
            "Connections open now",
            open_connections.clone(),
        );
        let max = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        max.set(i64::try_from(max_connections).unwrap_or(i64::MAX));
        registry.register(
            "cepheid_serve_http_max_connections",
            "Connections the front holds at most (--max-connections)",
            max,
        );
        let refused = Counter::default();
        registry.register(
            "cepheid_serve_http_connections_refused",
            "Connections closed at once because the front held its limit of connections",
            refused.clone(),
        );
        let timed_out = Counter::default();
        registry.register(
            "cepheid_serve_http_connections_timed_out",
            "Connections closed because no request came in time (idle, a slow head or body, a slow TLS handshake)",
            timed_out.clone(),
        );
        let tls_failures = Counter::default();
        registry.register(
            "cepheid_serve_tls_handshake_failures",
            "TLS handshakes that failed",
            tls_failures.clone(),
        );
        Metrics {
            registry,
            decisions,
            requests,
            cancelled,
            in_flight,
            panics,
            connections,
            open_connections,
            refused,
            timed_out,
            tls_failures,
            unauthorized,
        }
    }

    /// A decision answered.
    pub fn decided(&self, labels: &DecisionLabels, took: Duration) {
        self.decisions
            .get_or_create(labels)
            .observe(took.as_secs_f64());
    }

    /// The front's metrics as OpenMetrics text, without `# EOF`.
    pub fn encode(&self, out: &mut String) {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
            .expect("writing to a String does not fail");
    }
}
