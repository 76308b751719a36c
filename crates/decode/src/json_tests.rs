//! The JSON rules of `cepheid_core::json` seen through the decoders.

use cepheid_core::event::FieldPath;
use cepheid_core::record::FieldTable;

/// A record decoded with fewer fields, then given the others from its
/// text (at a change of rules, `docs/dynamic-rules.md`), is the record
/// a decoder with every field makes: JSON lines (nested fields,
/// objects, lists, floats, repeated keys) and CSV rows.
#[test]
fn records_read_missing_fields_as_a_decoder_would() {
    use crate::{Decoder, Format, Item};
    let full = FieldTable::new();
    for p in ["c", "a.b", "o", "n", "f", "i", "missing", "a"] {
        full.intern(&FieldPath::parse(p));
    }
    let json = [
        r#"{"ts":1,"a":{"b":[1,2.5]},"c":"x","o":[{"k":1}],"n":null,"f":1e3,"i":-7}"#,
        r#"{"ts":2,"c":"y","c":"z","f":0.1,"a":{"b":{"deep":1}}}"#,
        r#"{"ts":3,"c":"\u00e9\n","i":12345678901234567890}"#,
    ];
    let csv = [
        "ts,c,f,i,n,c",
        "1,x,2.50,007,,w",
        "2,,1e3,-0,true,",
        "3,a b,nan,1.0,x,",
    ];
    for (format, lines) in [(Format::JsonLines, &json[..]), (Format::Csv, &csv[..])] {
        let short = FieldTable::new();
        short.intern(&FieldPath::single("c"));
        let mut with_all = Decoder::new(format, "ts", full.clone());
        let mut with_one = Decoder::new(format, "ts", short);
        for line in lines {
            let (Item::Event(_, expected), Item::Event(_, mut record)) = (
                with_all.decode(line.as_bytes()).unwrap(),
                with_one.decode(line.as_bytes()).unwrap(),
            ) else {
                continue;
            };
            assert_eq!(record.values().len(), 1);
            record.read_missing(&full.paths());
            assert_eq!(record, expected, "{line}");
        }
    }
}
