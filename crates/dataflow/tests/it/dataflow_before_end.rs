//! The cut before the end (`Cuts::before_end`) of a run whose rules can
//! change: taken with the engines at the largest source watermark, so
//! that what the end of event time makes leaves after it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use cepheid_dataflow::{
    cep_cut, live_source_cut, Cuts, Feed, Lateness, Place, Plan, SourceItem, WorkerCut,
};
use cepheid_decode::{Decoder, Format, Item};
use cepheid_engine::engine::ReloadPolicy;
use cepheid_engine::{Output, Record, Timestamp};
use timely::dataflow::operators::Inspect;

/// What the `cep` made, with the time it left at.
type Found = Arc<Mutex<Vec<(Timestamp, Output<Record>)>>>;

/// The event above the watermark waits in the router until the changes'
/// frontier (the sources') passes it. Before, the router held it at its
/// own time, above every source's capability: as the source ended, the
/// engines' input frontier went there before the router saw the end, the
/// engines went past the cut's epoch (the largest watermark + 1) before
/// the cut was taken, and the timeout due in between left before the
/// cut, not after it as the end's records do. On two workers the other
/// worker's router holds back the events it routes (found under load by
/// `watch_on_workers_over_a_file_in_chunks_reloads_as_one_engine`: the
/// records of the first run's end kept, and the resumed run going on with
/// the old rules where the new ones were due); on one thread it is
/// deterministic.
#[test]
fn the_cut_before_the_end_of_changing_rules_is_at_the_watermark() {
    let rules = cepheid_engine::Rules::parse(
        "r.cep",
        r#"pattern ab { partition by user within 2s timeouts match a followed by b where a: type == "a"  b: type == "b" }"#,
    )
    .expect("parses");
    let mut plan = Plan::<Record>::new();
    plan.add(&rules).expect("adds");
    let plan = Arc::new(plan.changing(ReloadPolicy::Drain));
    // The watermark ends at 19,499: the cut at 19,500, the timeout due at
    // 20,000, the last event waiting at 20,500.
    let lines = [
        r#"{"ts":10000,"type":"x","user":"u"}"#,
        r#"{"ts":18000,"type":"a","user":"u"}"#,
        r#"{"ts":20500,"type":"x","user":"u"}"#,
    ];
    let saved: Arc<Mutex<Vec<Timestamp>>> = Arc::default();
    let found: Found = Arc::default();
    let (saved_to, found_to) = (Arc::clone(&saved), Arc::clone(&found));
    let cuts = Cuts::new();
    cuts.before_end();
    timely::execute(timely::Config::thread(), move |worker| {
        let to = Arc::clone(&saved_to);
        let cut = WorkerCut::new(Arc::clone(&cuts), move |epoch, _| {
            to.lock().unwrap().push(epoch)
        });
        let (plan, found) = (Arc::clone(&plan), Arc::clone(&found_to));
        let feed: Feed<Record> = worker.dataflow::<Timestamp, _, _>(|scope| {
            let (feed, events, _) =
                live_source_cut(scope, 0, Lateness::new(1_000), Instant::now, &cut);
            let sink = |_| Vec::<Output<Record>>::new();
            cep_cut(&plan, events, sink, &cut).inspect_core(move |event| {
                if let Ok((stamp, outputs)) = event {
                    let at = stamp.least().copied().unwrap_or(Timestamp::MIN);
                    let mut found = found.lock().unwrap();
                    found.extend(outputs.iter().map(|o| (at, o.clone())));
                }
            });
            feed
        });
        let mut decoder = Decoder::new(Format::JsonLines, "ts", plan.fields().clone());
        let mut items = Vec::new();
        for (offset, line) in (1..).zip(lines) {
            if let Item::Event(ts, event) = decoder.decode(line.as_bytes()).expect("decodes") {
                items.push(SourceItem::Event { ts, offset, event });
            }
        }
        feed.send_at(items, Place::default())
            .expect("the source is there");
        while feed.backlog() > 0 {
            worker.step();
        }
        // The input ends.
    })
    .expect("timely starts")
    .join()
    .into_iter()
    .for_each(|r| r.expect("the worker failed"));
    assert_eq!(*saved.lock().unwrap(), [19_500], "the cut before the end");
    let found = found.lock().unwrap();
    let timeouts: Vec<(Timestamp, Timestamp)> = (found.iter())
        .filter_map(|(at, output)| match output {
            Output::Timeout { expired_at, .. } => Some((*at, *expired_at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        timeouts,
        [(Timestamp::MAX, 20_000)],
        "the timeout above the cut leaves after it, at the end"
    );
}
