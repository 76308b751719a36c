//! CSV rows (RFC 4180 quoting, one row per line) and their typing: cells
//! that parse as integers or finite floats are numbers, `true`/`false` are
//! booleans, empty cells are absent, the rest are strings.

/// Splits one CSV line into cells, undoing `"..."` quoting (`""` inside
/// quotes is one `"`).
pub(crate) fn split_row(line: &str) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_cell_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, ',') => {
                cells.push(std::mem::take(&mut cell));
                at_cell_start = true;
                continue;
            }
            (false, '"') if at_cell_start => quoted = true,
            (false, '"') => return Err("a `\"` inside an unquoted CSV cell".into()),
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text after a closing `\"` in a CSV cell".into());
                }
            }
            (_, c) => cell.push(c),
        }
        at_cell_start = false;
    }
    if quoted {
        return Err("a quoted CSV cell is not closed on this line".into());
    }
    cells.push(cell);
    Ok(cells)
}

/// The JSON object of a row (empty cells left out) and its text, with the
/// fields in header order.
pub(crate) fn row_to_json(
    header: &[String],
    cells: &[String],
) -> (serde_json::Map<String, serde_json::Value>, String) {
    let mut object = serde_json::Map::new();
    let mut text = String::from("{");
    for (name, cell) in header.iter().zip(cells) {
        if cell.is_empty() {
            continue;
        }
        let value = typed(cell);
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(&serde_json::Value::String(name.clone()).to_string());
        text.push(':');
        text.push_str(&value.to_string());
        object.insert(name.clone(), value);
    }
    text.push('}');
    (object, text)
}

/// The JSON value of one non-empty cell.
fn typed(cell: &str) -> serde_json::Value {
    if let Ok(i) = cell.parse::<i64>() {
        return i.into();
    }
    if let Some(n) = cell
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .filter(|_| {
            cell.bytes()
                .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
        })
        .and_then(serde_json::Number::from_f64)
    {
        return serde_json::Value::Number(n);
    }
    match cell {
        "true" => true.into(),
        "false" => false.into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(split_row("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            split_row(r#""a,b","say ""hi""",x"#).unwrap(),
            ["a,b", r#"say "hi""#, "x"]
        );
        assert_eq!(split_row("").unwrap(), [""]);
        assert!(split_row(r#""open"#).is_err());
        assert!(split_row(r#"a"b"#).is_err());
        assert!(split_row(r#""a"b"#).is_err());
    }

    #[test]
    fn typing() {
        assert_eq!(typed("12"), serde_json::json!(12));
        assert_eq!(typed("-1.5e3"), serde_json::json!(-1500.0));
        assert_eq!(typed("true"), serde_json::json!(true));
        assert_eq!(typed("inf"), serde_json::json!("inf"));
        assert_eq!(typed("NaN"), serde_json::json!("NaN"));
        assert_eq!(typed("u1"), serde_json::json!("u1"));
        assert_eq!(typed("99999999999999999999"), serde_json::json!(1e20));
    }

    #[test]
    fn rows_keep_header_order() {
        let header = ["z".to_string(), "a".to_string(), "m".to_string()];
        let cells = ["1".to_string(), "".to_string(), "x\"y".to_string()];
        let (object, text) = row_to_json(&header, &cells);
        assert_eq!(text, r#"{"z":1,"m":"x\"y"}"#);
        assert_eq!(object.len(), 2);
    }
}
