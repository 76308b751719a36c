//! Kafka in, alerts out exactly once, rules reloaded as they change, the monitor's page:
//! `cargo run --example embed -- BROKERS IN OUT RULES CHECKPOINTS ADDR`
use cepheid_kafka::{KafkaOptions, Until};
use cepheid_monitor::{Monitor, Status};
use cepheid_runtime::{Both, Config, Input, Runtime, StderrReport, Summary};
use std::error::Error;

/// Runs to the topic's end as it is now (a deployment leaves `until` out).
pub fn run(args: &[String]) -> Result<(Summary, Status), Box<dyn Error>> {
    let [brokers, input, output, rules, checkpoints, addr] = args else {
        return Err("BROKERS IN OUT RULES CHECKPOINTS ADDR".into());
    };
    let events = Input::file(format!("kafka://{brokers}/{input}"));
    let mut config = Config::new(events, vec![rules.into()]);
    config.output = Some(format!("kafka://{brokers}/{output}").into());
    config.checkpoint = Some(checkpoints.into());
    config.watch = true;
    let kafka = KafkaOptions {
        until: Some(&Until::End),
        ..KafkaOptions::default()
    };
    kafka.check(&config)?;
    let source = kafka.open_source(&mut config)?;
    let sink = kafka.open_sink(&mut config)?;
    let rules = cepheid_engine::Rules::load_all(&config.patterns)?;
    let mut engine = config.engine();
    engine.add(&rules)?;
    let monitor = Monitor::new();
    let _page = monitor.serve(addr.as_str())?;
    let report = Box::new(Both(StderrReport, monitor.observer()));
    let summary = Runtime::with_source(config, engine, source, sink, report)?.run();
    Ok((summary, monitor.snapshot()))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("{}", run(&args)?.0);
    Ok(())
}
