//! A table's columns (a pandas DataFrame's, an Arrow table's) into
//! events, column by column rather than a dict per row (issue 64).
//!
//! The Python side (`cepheid._columns`) gives each column once: numbers
//! and booleans as the bytes of a NumPy array (little-endian `int64`,
//! `float64`, `uint8`), read here in place; any other column as a list of
//! its cells, each written as the row path writes a dict's value
//! ([`convert::cell_json`]); and for each a mask of its missing cells
//! (NaN, `None`, `NaT`, `pd.NA`, Arrow's nulls), which are left out of
//! their event: a missing value is an absent field. Each row is then the
//! JSON text the row path writes for the dict of its present cells
//! (`{"ts": 1, "card": "c1"}`, same separators, same number forms), and
//! is decoded by the same decoder: the same text, the same records.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use cepheid_core::value::json::{push_int, push_json_string, push_json_value};
use cepheid_core::Value;

use crate::convert;

/// The values of one column.
enum Data<'py> {
    /// `int64`, little-endian, 8 bytes a row.
    Int(Bound<'py, PyBytes>),
    /// `float64`, little-endian, 8 bytes a row: NaN is missing.
    Float(Bound<'py, PyBytes>),
    /// One byte a row, 0 or 1.
    Bool(Bound<'py, PyBytes>),
    /// A list of the cells, any Python values.
    Cells(Bound<'py, PyList>),
}

/// One column: its name as JSON (`"card": `), its values, its mask.
pub struct Column<'py> {
    name: String,
    key: Vec<u8>,
    data: Data<'py>,
    /// One byte a row, not 0 where the cell is missing.
    mask: Option<Bound<'py, PyBytes>>,
}

/// The columns of a table, all `rows` long.
pub struct Table<'py> {
    columns: Vec<Column<'py>>,
    rows: usize,
}

fn bytes_of<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
    width: usize,
    rows: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = value
        .cast::<PyBytes>()
        .map_err(|_| PyTypeError::new_err(format!("column `{name}`: its data must be bytes")))?;
    if bytes.as_bytes().len() != width * rows {
        return Err(PyValueError::new_err(format!(
            "column `{name}`: {} bytes for {rows} rows of {width} bytes",
            bytes.as_bytes().len()
        )));
    }
    Ok(bytes.clone())
}

impl<'py> Table<'py> {
    /// The columns as `(name, kind, data, mask)` tuples: `kind` `"i"`
    /// (data the bytes of `int64`s), `"f"` (`float64`s), `"b"` (one byte
    /// a row) or `"o"` (a list of the cells); `mask` `None` or one byte a
    /// row, not 0 for a missing cell.
    pub fn new(columns: &Bound<'py, PyAny>, rows: usize) -> PyResult<Table<'py>> {
        let mut list = Vec::new();
        for column in columns.try_iter()? {
            let column = column?;
            let tuple = column.cast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err("a column must be a tuple (name, kind, data, mask)")
            })?;
            if tuple.len() != 4 {
                return Err(PyTypeError::new_err(
                    "a column must be a tuple (name, kind, data, mask)",
                ));
            }
            let name_obj = tuple.get_item(0)?;
            let name = name_obj
                .cast::<PyString>()
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "a column's name must be a string, not {}",
                        name_obj.repr().map(|r| r.to_string()).unwrap_or_default()
                    ))
                })?
                .to_str()
                .map_err(|_| PyValueError::new_err("a column's name is not valid Unicode"))?
                .to_string();
            let kind: String = tuple.get_item(1)?.extract()?;
            let data = tuple.get_item(2)?;
            let data = match kind.as_str() {
                "i" => Data::Int(bytes_of(&data, &name, 8, rows)?),
                "f" => Data::Float(bytes_of(&data, &name, 8, rows)?),
                "b" => Data::Bool(bytes_of(&data, &name, 1, rows)?),
                "o" => {
                    let cells = data.cast::<PyList>().map_err(|_| {
                        PyTypeError::new_err(format!("column `{name}`: its cells must be a list"))
                    })?;
                    if cells.len() != rows {
                        return Err(PyValueError::new_err(format!(
                            "column `{name}`: {} cells for {rows} rows",
                            cells.len()
                        )));
                    }
                    Data::Cells(cells.clone())
                }
                other => {
                    return Err(PyValueError::new_err(format!(
                        "column `{name}`: unknown kind {other:?}"
                    )))
                }
            };
            let mask = tuple.get_item(3)?;
            let mask = match mask.is_none() {
                true => None,
                false => Some(bytes_of(&mask, &name, 1, rows)?),
            };
            let mut key = Vec::with_capacity(name.len() + 4);
            push_json_string(&mut key, &name);
            key.extend_from_slice(b": ");
            list.push(Column {
                name,
                key,
                data,
                mask,
            });
        }
        Ok(Table {
            columns: list,
            rows,
        })
    }

    /// How many rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes row `row` into `out` (cleared first) as the JSON text the
    /// row path writes for the dict of its present cells. A cell that is
    /// no JSON value is an error naming its column and row.
    pub fn row_json(&self, row: usize, out: &mut Vec<u8>) -> PyResult<()> {
        out.clear();
        out.push(b'{');
        let mut first = true;
        for column in &self.columns {
            if let Some(mask) = &column.mask {
                if mask.as_bytes()[row] != 0 {
                    continue;
                }
            }
            let at = out.len();
            if !first {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(&column.key);
            let written = match &column.data {
                Data::Int(bytes) => {
                    push_int(out, i64::from_le_bytes(word(bytes.as_bytes(), row)));
                    true
                }
                Data::Float(bytes) => {
                    let f = f64::from_le_bytes(word(bytes.as_bytes(), row));
                    if f.is_nan() {
                        false
                    } else if f.is_infinite() {
                        return Err(PyValueError::new_err(format!(
                            "column `{}`, row {row}: {f} is not a JSON number \
                             (a missing value is NaN or None)",
                            column.name
                        )));
                    } else {
                        push_json_value(out, &Value::Float(f));
                        true
                    }
                }
                Data::Bool(bytes) => {
                    out.extend_from_slice(match bytes.as_bytes()[row] {
                        0 => b"false",
                        _ => b"true",
                    });
                    true
                }
                Data::Cells(cells) => {
                    convert::cell_json(&cells.get_item(row)?, out, &column.name, row)?
                }
            };
            match written {
                true => first = false,
                false => out.truncate(at),
            }
        }
        out.push(b'}');
        Ok(())
    }
}

/// The 8 bytes of row `row`.
fn word(bytes: &[u8], row: usize) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[row * 8..row * 8 + 8]);
    w
}
