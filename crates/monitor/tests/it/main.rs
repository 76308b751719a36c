//! The monitor's integration tests: one binary (the support compiled once),
//! a module per subject: the live page in a headless browser (`browser`),
//! the HTTP server's limits (`limits`), the Prometheus text and
//! `/status.json` (`scrape`).

mod support;

mod browser;
mod graph_layout;
mod limits;
mod scrape;
