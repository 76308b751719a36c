//! The reader of a share of a file (`ShareReader`): a file's chunks, a
//! list of its byte ranges, with the run's policy (malformed lines said
//! with their line in the file, `strict`, control records).

use std::path::Path;

use cepheid_core::record::FieldTable;
use cepheid_decode::{Decoder, Format};
use cepheid_runtime::source::{Control, FileChunks, Got, Policy, Range, ShareReader};

use super::support::scratch;

/// What a reader gave: each line as `(place, what)`, `what` an event's
/// time, a watermark, a control record or a message.
fn read_all(mut reader: ShareReader) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    while let Some(line) = reader.next() {
        let what = match line {
            Got::Event(ts, _) => format!("event {ts}"),
            Got::Watermark(t) => format!("watermark {t}"),
            Got::Rules(control, place) => format!("{place}: {}", control.describe()),
            Got::Malformed(notice, end) => format!("{} {}", notice, end.is_some()),
            Got::Failed(notice, _) => notice.to_string(),
            other => format!("{other:?}"),
        };
        got.push((reader.place(), what));
    }
    got
}

/// A range of the file from byte `start` to `end`, the lines before it
/// given or not, its first `skip` lines read before.
fn range(start: u64, end: u64, lines: Option<u64>, skip: u64) -> Range {
    Range {
        start,
        end,
        lines,
        skip,
    }
}

/// A reader of `ranges` of the JSON lines at `path`, control records
/// recognized.
fn json_ranges(path: &Path, ranges: Vec<Range>) -> ShareReader {
    ShareReader::ranges(
        path,
        "events.jsonl",
        ranges,
        false,
        decoder(Format::JsonLines),
    )
    .controls(true)
}

fn decoder(format: Format) -> impl Fn() -> Decoder + Send + 'static {
    let table = FieldTable::new();
    move || Decoder::new(format, "ts", table.clone())
}

/// The byte offset where line `line` (numbered from 1) of `text` starts.
fn line_start(text: &str, line: usize) -> u64 {
    text.split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum::<usize>() as u64
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const JSON: &str = "{\"ts\": 1}\n\
    {\"ts\": 2}\n\
    not json\n\
    {\"ts\": 4}\n\
    \n\
    {\"$rules\": \"pattern p { match a where a: x == 1 }\"}\n\
    {\"ts\": 7}\n\
    {\"$watermark\": 7}\n\
    {\"ts\": 9\n\
    {\"ts\": 10}\n";

#[test]
fn a_file_read_as_a_list_of_ranges_gives_their_lines_numbered_in_the_file() {
    let dir = scratch("share-ranges");
    let path = write(&dir, "events.jsonl", JSON);
    // Lines 2-4 (line count known), then 7-10 (counted), skipping line 7
    // (read before).
    let ranges = vec![
        range(line_start(JSON, 2), line_start(JSON, 5), Some(1), 0),
        range(line_start(JSON, 7), u64::MAX, None, 1),
    ];
    let reader = json_ranges(&path, ranges);
    let got = read_all(reader);
    let place = |range: u64, line: u64| (range << 32) | line;
    assert_eq!(
        got,
        [
            (place(0, 1), "event 2".to_string()),
            (
                place(0, 2),
                "events.jsonl:3: malformed line: invalid JSON: expected ident at line 1 column 2 false".to_string()
            ),
            (place(0, 3), "event 4".to_string()),
            (place(1, 2), "watermark 7".to_string()),
            (
                place(1, 3),
                "events.jsonl:9: malformed line: invalid JSON: EOF while parsing an object at line 1 column 8 false".to_string()
            ),
            (place(1, 4), "event 10".to_string()),
        ]
    );
    // A control record in a range, named by its line in the file.
    let ranges = vec![range(line_start(JSON, 5), line_start(JSON, 7), None, 0)];
    let reader = json_ranges(&path, ranges);
    assert_eq!(
        read_all(reader),
        [(2, "events.jsonl:6: `$rules`".to_string())]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_strict_a_share_ends_after_its_first_malformed_line() {
    let dir = scratch("share-strict");
    let path = write(&dir, "events.jsonl", JSON);
    let whole = vec![range(0, u64::MAX, None, 0)];
    let reader = json_ranges(&path, whole).policy(Policy::new("events.jsonl", true));
    let got = read_all(reader);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[2].1.starts_with("events.jsonl:3: malformed line:"),
        "{got:?}"
    );
    assert!(got[2].1.ends_with(" true"), "{got:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_csv_file_read_as_ranges_or_chunks_decodes_each_with_its_header() {
    let dir = scratch("share-csv");
    let text = "ts,type\n1,a\n2,b\nx\n4,d\n5,e\n";
    let path = write(&dir, "events.csv", text);
    let ranges = vec![range(line_start(text, 3), u64::MAX, None, 0)];
    let reader = ShareReader::ranges(&path, "events.csv", ranges, true, decoder(Format::Csv));
    let got: Vec<String> = read_all(reader).into_iter().map(|(_, what)| what).collect();
    assert_eq!(got[0], "event 2");
    assert!(
        got[1].starts_with("events.csv:4: malformed line:"),
        "{got:?}"
    );
    assert_eq!(got[2..], ["event 4", "event 5"]);
    // Chunks of 6 bytes, two readers: together every line once, each
    // malformed line named by its line in the file.
    let mut all = Vec::new();
    for index in 0..2 {
        let chunks = FileChunks::new(&path, index, 2, 6)
            .unwrap()
            .with_header(true);
        let reader = ShareReader::chunks(&path, "events.csv", chunks, |_| 0, decoder(Format::Csv));
        all.extend(read_all(reader));
    }
    all.sort();
    let whats: Vec<&str> = all.iter().map(|(_, what)| what.as_str()).collect();
    assert_eq!(whats.len(), 5, "{all:?}");
    assert!(whats.contains(&"event 1") && whats.contains(&"event 5"));
    assert!(
        whats
            .iter()
            .any(|w| w.starts_with("events.csv:4: malformed line:")),
        "{all:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_share_of_chunks_skips_the_lines_read_before_and_the_chunks_read_whole() {
    let dir = scratch("share-chunks");
    let path = write(&dir, "events.jsonl", JSON);
    let chunks = |readers| {
        FileChunks::new(&path, 0, readers, 20)
            .unwrap()
            .past_lines(|line| Control::parse(line).is_some())
    };
    let whole = read_all(
        ShareReader::chunks(&path, "e", chunks(1), |_| 0, decoder(Format::JsonLines))
            .controls(true),
    );
    // Chunk 0 read whole, one line of chunk 1: the rest is what the whole
    // reading gave after that place.
    let first = whole.iter().find(|(place, _)| place >> 32 == 1).unwrap().0;
    let read = move |chunk: u64| match chunk {
        0 => u64::MAX,
        1 => 1,
        _ => 0,
    };
    let rest = read_all(
        ShareReader::chunks(&path, "e", chunks(1), read, decoder(Format::JsonLines)).controls(true),
    );
    let after: Vec<_> = whole
        .into_iter()
        .filter(|(place, _)| *place > first)
        .collect();
    assert_eq!(rest, after);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_share_of_chunks_reads_the_lines_below_those_read_before_that_were_not() {
    let dir = scratch("share-again");
    let path = write(&dir, "events.jsonl", JSON);
    let chunks = || FileChunks::new(&path, 0, 1, 20).unwrap();
    let whole = read_all(ShareReader::chunks(
        &path,
        "e",
        chunks(),
        |_| 0,
        decoder(Format::JsonLines),
    ));
    // Chunk 1 read to its line 3 but its line 2, the rest not read.
    let read = |chunk: u64| {
        if chunk == 0 {
            u64::MAX
        } else {
            u64::from(chunk == 1) * 3
        }
    };
    let rest = read_all(
        ShareReader::chunks(&path, "e", chunks(), read, decoder(Format::JsonLines))
            .read_again(|chunk| if chunk == 1 { vec![2] } else { Vec::new() }),
    );
    let after: Vec<_> = (whole.into_iter())
        .filter(|(place, _)| *place == (1 << 32 | 2) || *place > (1 << 32 | 3))
        .collect();
    assert_eq!(rest, after);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ranges_left_are_those_after_a_place_and_the_rest_of_its_own() {
    let at = |offset, lines| cepheid_runtime::source::FilePosition {
        offset,
        lines,
        tail: None,
    };
    let list = [range(10, 20, Some(1), 0), range(30, u64::MAX, Some(3), 0)];
    assert_eq!(Range::left(&list, at(10, 1)), list);
    assert_eq!(
        Range::left(&list, at(15, 2)),
        [range(15, 20, Some(2), 0), list[1]]
    );
    assert_eq!(Range::left(&list, at(20, 3)), [list[1]]);
    // In the last, to the end of the file: none (the file from there).
    assert_eq!(Range::left(&list, at(30, 3)), []);
    assert_eq!(Range::left(&list, at(44, 5)), []);
}
