//! A sink that is slow to make a cut durable: the workers take the run's
//! last cut (before the end of the file) while worker 0 still completes
//! the one before. Each cut is completed and committed in turn, and the
//! run ends with no error. (A worker that wrote its piece of the last cut
//! deleted the folder of every cut below it, the one being completed too:
//! "cannot write the checkpoint: No such file or directory", the input
//! stopped, and no commit; about 1 run in 50 of `dataflow_panic` before.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cepheid_dataflow::run::{Cluster, Scale};
use cepheid_engine::Rules;
use cepheid_runtime::sink::{Checkpoint, Kind, Sink, SinkError, SinkState};
use cepheid_runtime::source::Position;
use cepheid_runtime::{Config, Every, Input, Notice, Report, Runtime};

/// The sink: takes its time to prepare each cut, keeps what it committed.
struct Slow {
    committed: Arc<Mutex<Vec<u64>>>,
}

impl Sink for Slow {
    fn describe(&self, _: Kind) -> String {
        "slow".to_string()
    }

    fn write(&mut self, _: Kind, _: &[u8], _: &[u8]) -> Result<(), SinkError> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn prepare(&mut self, _: u64) -> Result<SinkState, SinkError> {
        std::thread::sleep(Duration::from_millis(40));
        Ok(SinkState::default())
    }

    fn commit(&mut self, number: u64, _: &Position) -> Result<(), SinkError> {
        self.committed.lock().unwrap().push(number);
        Ok(())
    }

    fn recover(&mut self, kept: &[Checkpoint]) -> Result<usize, SinkError> {
        Ok(kept.len())
    }
}

/// What the run said.
struct Kept(Arc<Mutex<Vec<String>>>);

impl Report for Kept {
    fn notice(&mut self, notice: Notice) {
        self.0.lock().unwrap().push(notice.to_string());
    }
}

#[test]
fn a_slow_sink_commits_every_cut_up_to_the_one_before_the_end_of_the_file() {
    let dir = cepheid_testkit::Scratch::new(
        std::env::temp_dir().join(format!("slow_sink_{}", std::process::id())),
    );
    for round in 0..6 {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text: String = (0..20_000)
            .map(|i| {
                let (user, n) = ((i / 2) % 97, 1 + i % 2);
                format!("{{\"ts\": {i}, \"user\": \"u{user}\", \"n\": {n}}}\n")
            })
            .collect();
        let path = dir.join("events.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut config = Config::new(Input::File(path.clone()), Vec::new());
        config.checkpoint = Some(dir.join("ckpt"));
        config.checkpoint_every = Every {
            time: Some(Duration::from_millis(5)),
            lines: None,
        };
        let scale = Scale {
            workers: 3,
            chunk_bytes: 4096,
            ..Scale::default()
        };
        let rules = Rules::parse(
            "r.cep",
            "pattern ab { partition by user match a followed by b where a: n == 1  b: n == 2 }\n",
        )
        .expect("parses");
        let said = Arc::new(Mutex::new(Vec::new()));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let sink = Slow {
            committed: Arc::clone(&committed),
        };
        let cluster = Box::new(Cluster::new(scale));
        let report = Box::new(Kept(Arc::clone(&said)));
        let sink: Option<Box<dyn Sink>> = Some(Box::new(sink));
        let summary = Runtime::on_cluster(config, &rules, cluster, None, sink, report)
            .expect("starts")
            .run();
        let said = said.lock().unwrap();
        let errors: Vec<&String> = said.iter().filter(|s| s.contains("error")).collect();
        assert!(errors.is_empty(), "round {round}: {errors:?}");
        assert!(
            summary.error().is_none(),
            "round {round}: {:?}",
            summary.end
        );
        assert!(!summary.uncounted, "round {round}: worker 0's");
        assert_eq!(summary.events, 20_000);
        // Each cut committed once, in order, the last one the folder's
        // newest: the one before the end of the file.
        let committed = committed.lock().unwrap();
        assert!(!committed.is_empty(), "round {round}: no commit");
        let expected: Vec<u64> = (1..=*committed.last().unwrap()).collect();
        assert_eq!(*committed, expected, "round {round}");
        let kept = cepheid_runtime::checkpoint::store::kept(&dir.join("ckpt")).unwrap();
        assert_eq!(
            kept.len(),
            1,
            "round {round}: the committed cut alone is kept"
        );
        assert_eq!(kept[0].marker().number(), *committed.last().unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
