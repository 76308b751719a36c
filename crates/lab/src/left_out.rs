//! What a lab run's lists and indicators left out at their limits or for
//! their values ([`LeftOut`]; issue 60, item 3): the counts of the run's
//! summary, shown by the lab's reports beside their figures (`backtest`'s
//! table, JSON and page), so that a rule set backtested past
//! `--max-list-entries` or `--max-indicator-entries`, or over values that
//! are no numbers, is not taken for one that saw everything.

use std::collections::BTreeMap;

use cepheid_engine::engine::LeftOutCounts;
use cepheid_runtime::{IndicatorCounts, ListCounts, Summary};

/// What a run's lists and indicators left out: its summary's counts,
/// and the same by list and indicator.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct LeftOut {
    /// What the lists refused, when the rules declare a list.
    pub lists: Option<ListCounts>,
    /// What the indicators left out, when the rules declare one.
    pub indicators: Option<IndicatorCounts>,
    /// By list and indicator (only those that left something out).
    pub by_name: cepheid_engine::engine::LeftOut,
}

impl LeftOut {
    /// What `summary` counts.
    pub fn of(summary: &Summary) -> LeftOut {
        LeftOut {
            lists: summary.lists,
            indicators: summary.indicators,
            by_name: summary.left_out.clone(),
        }
    }

    /// Was nothing left out?
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// One line per list and indicator that left something out, as
    /// `list `seen`: 3 adds refused at its limit (--max-list-entries)`
    /// (none when nothing was).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let named = |kind: &str, map: &BTreeMap<String, LeftOutCounts>, words: [&str; 2]| {
            (map.iter())
                .map(|(name, c)| {
                    let parts: Vec<String> = [(c.limit, words[0]), (c.value, words[1])]
                        .into_iter()
                        .filter(|(n, _)| *n > 0)
                        .map(|(n, what)| format!("{n} {what}"))
                        .collect();
                    format!("{kind} `{name}`: {}", parts.join(", "))
                })
                .collect::<Vec<_>>()
        };
        lines.extend(named(
            "list",
            &self.by_name.lists,
            [
                "adds refused at its limit (--max-list-entries)",
                "values refused (no entry of its kind)",
            ],
        ));
        lines.extend(named(
            "indicator",
            &self.by_name.indicators,
            [
                "events left out at the limit (--max-indicator-entries)",
                "values left out (not a number)",
            ],
        ));
        lines
    }

    /// The JSON of a report: `"lists"` when the rules declare a list,
    /// `"indicators"` when they declare an indicator, each with its
    /// counts and the same by name.
    pub fn json_into(&self, report: &mut serde_json::Value) {
        let by_name = |map: &BTreeMap<String, LeftOutCounts>, words: [&str; 2]| {
            let mut object = serde_json::Map::new();
            for (name, c) in map {
                object.insert(
                    name.clone(),
                    serde_json::json!({ words[0]: c.limit, words[1]: c.value }),
                );
            }
            serde_json::Value::Object(object)
        };
        if let Some(l) = &self.lists {
            let words = ["adds_refused", "values_refused"];
            report["lists"] = serde_json::json!({
                "adds_refused": l.adds_refused,
                "values_refused": l.values_refused,
                "by_list": by_name(&self.by_name.lists, words),
            });
        }
        if let Some(i) = &self.indicators {
            let words = ["entries_refused", "not_numeric"];
            report["indicators"] = serde_json::json!({
                "entries_refused": i.entries_refused,
                "not_numeric": i.not_numeric,
                "by_indicator": by_name(&self.by_name.indicators, words),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_each_list_and_indicator_that_left_something_out() {
        let mut by_name = cepheid_engine::engine::LeftOut::default();
        let mut c = LeftOutCounts::default();
        c.limit = 3;
        by_name.lists.insert("seen".to_string(), c);
        c.limit = 0;
        c.value = 2;
        by_name.indicators.insert("spent".to_string(), c);
        let left_out = LeftOut {
            lists: Some(ListCounts::default()),
            indicators: None,
            by_name,
        };
        assert_eq!(
            left_out.lines(),
            [
                "list `seen`: 3 adds refused at its limit (--max-list-entries)",
                "indicator `spent`: 2 values left out (not a number)"
            ]
        );
        let mut json = serde_json::json!({});
        left_out.json_into(&mut json);
        assert_eq!(
            json.to_string(),
            r#"{"lists":{"adds_refused":0,"by_list":{"seen":{"adds_refused":3,"values_refused":0}},"values_refused":0}}"#
        );
    }
}
