//! Kafka in, Kafka out for cepheid (issue 24), not wired into `cepheid run` yet.
