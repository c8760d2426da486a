//! Reading batches (CSV or JSON Lines) row by row against a contract.

use crate::contract::Contract;
use crate::validate::{Reason, Value, check_text};

/// The raw text kept for a quarantined row is cut to this many bytes.
pub const RAW_TEXT_LIMIT: usize = 4096;

/// One data row of a batch and what validation made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number in the source file where the row starts (the header is line 1).
    pub line: u64,
    /// The row's source text without its line terminator, cut to [`RAW_TEXT_LIMIT`] bytes.
    pub raw: String,
    pub outcome: Result<Vec<Value>, Vec<Reason>>,
}

/// A problem that makes the whole batch unreadable, with one reason for all of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

/// The file formats a batch can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Csv,
    Jsonl,
}

impl FileKind {
    /// The format a file name announces (`.jsonl`, `.ndjson`, `.json`, else CSV), ignoring a
    /// trailing `.gz`.
    pub fn of(name: &str) -> FileKind {
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if [".jsonl", ".ndjson", ".json"].iter().any(|s| name.ends_with(s)) { FileKind::Jsonl } else { FileKind::Csv }
    }
}

/// Reads a batch in either format; see [`read_csv`] and [`read_jsonl`].
pub fn read_batch(
    contract: &Contract,
    kind: FileKind,
    bytes: &[u8],
    on_row: impl FnMut(Row),
) -> Result<(), BatchError> {
    match kind {
        FileKind::Csv => read_csv(contract, bytes, on_row),
        FileKind::Jsonl => read_jsonl(contract, bytes, on_row),
    }
}

/// Reads a JSON Lines batch: one object per line, fields by column name. Blank lines are not
/// rows; a line that is not a JSON object is a row with that reason. Extra fields are ignored.
pub fn read_jsonl(contract: &Contract, bytes: &[u8], mut on_row: impl FnMut(Row)) -> Result<(), BatchError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let outcome = match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(fields)) => check_object(contract, &fields),
            Ok(other) => {
                Err(vec![Reason::row("json", format!("the line is JSON but not an object: {}", json_kind(&other)))])
            }
            Err(e) if std::str::from_utf8(line).is_err() => {
                Err(vec![Reason::row("encoding", format!("the line is not valid UTF-8 ({e})"))])
            }
            Err(e) => Err(vec![Reason::row("json", format!("the line is not valid JSON: {e}"))]),
        };
        on_row(Row { line: i as u64 + 1, raw: raw_text(line), outcome });
    }
    Ok(())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}

fn check_object(
    contract: &Contract,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Value>, Vec<Reason>> {
    let mut values = Vec::with_capacity(contract.columns.len());
    let mut reasons = Vec::new();
    for column in &contract.columns {
        match crate::validate::check_json(column, fields.get(&column.name).unwrap_or(&serde_json::Value::Null)) {
            Ok(v) => values.push(v),
            Err(mut r) => reasons.append(&mut r),
        }
    }
    if reasons.is_empty() { Ok(values) } else { Err(reasons) }
}

/// Reads a CSV batch and hands every data row, valid or not, to `on_row`.
///
/// The contract's `csv` section sets the delimiter and whether a header line names the
/// columns. Values come back in contract column order. Extra columns in the file are
/// ignored; a contract column missing from the header, a repeated header name or an
/// unreadable header reject the whole batch.
pub fn read_csv(contract: &Contract, bytes: &[u8], mut on_row: impl FnMut(Row)) -> Result<(), BatchError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let format = &contract.csv;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(format.delimiter as u8)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();

    let header = if format.header {
        match reader.read_byte_record(&mut record) {
            Ok(true) => record.clone(),
            Ok(false) => return Err(BatchError("the file is empty: no header line".into())),
            Err(e) => return Err(BatchError(format!("the header line is unreadable: {e}"))),
        }
    } else {
        contract.columns.iter().map(|c| c.name.as_bytes()).collect()
    };
    let names = header
        .iter()
        .map(|h| std::str::from_utf8(h).map(|s| s.trim().to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| BatchError("the header line is not valid UTF-8".into()))?;
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(BatchError(format!("the header names column {name:?} twice")));
        }
    }
    let positions = contract
        .columns
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| *n == c.name)
                .ok_or_else(|| BatchError(format!("the header lacks column {:?} required by the contract", c.name)))
        })
        .collect::<Result<Vec<usize>, _>>()?;

    loop {
        let start = reader.position().byte() as usize;
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let end = reader.position().byte() as usize;
                let (line, raw) = span(&bytes[start..end.min(bytes.len())], line);
                let outcome = check_record(contract, &positions, names.len(), &record);
                on_row(Row { line, raw, outcome });
            }
            Err(e) => {
                // The csv reader reports only malformed UTF-8 in string records and I/O
                // errors; with byte records this is unreachable for in-memory input, but a
                // row is never dropped silently.
                let end = reader.position().byte() as usize;
                let (line, raw) = span(&bytes[start..end.min(bytes.len())], line);
                on_row(Row { line, raw, outcome: Err(vec![Reason::row("fields", format!("unreadable row: {e}"))]) });
                if end <= start {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn check_record(
    contract: &Contract,
    positions: &[usize],
    width: usize,
    record: &csv::ByteRecord,
) -> Result<Vec<Value>, Vec<Reason>> {
    if record.len() != width {
        return Err(vec![Reason::row(
            "fields",
            format!("the row has {} fields but the header has {width}", record.len()),
        )]);
    }
    let mut values = Vec::with_capacity(positions.len());
    let mut reasons = Vec::new();
    for (column, &pos) in contract.columns.iter().zip(positions) {
        let field = record.get(pos).unwrap_or_default();
        let Ok(text) = std::str::from_utf8(field) else {
            reasons.push(Reason::column(
                &column.name,
                "encoding",
                format!("{}: the value is not valid UTF-8", column.name),
            ));
            continue;
        };
        match check_text(column, text) {
            Ok(v) => values.push(v),
            Err(mut r) => reasons.append(&mut r),
        }
    }
    if reasons.is_empty() { Ok(values) } else { Err(reasons) }
}

/// The first line and the text of a row from the bytes the reader consumed for it.
///
/// With CRLF endings the reader stops between '\r' and '\n', so a row's bytes can start
/// with the previous row's '\n'; the line number moves past it.
fn span(bytes: &[u8], line: u64) -> (u64, String) {
    let start = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len());
    let skipped = bytes[..start].iter().filter(|b| **b == b'\n').count() as u64;
    (line + skipped, raw_text(&bytes[start..]))
}

fn raw_text(bytes: &[u8]) -> String {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    let cut = &trimmed[..trimmed.len().min(RAW_TEXT_LIMIT)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\ncolumns:\n  - {name: x, type: float, min: 0}\n  - {name: k, type: category, allowed: [a, b], nullable: true}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    fn read(text: &str) -> Result<Vec<Row>, BatchError> {
        let mut rows = Vec::new();
        read_csv(&contract(), text.as_bytes(), |r| rows.push(r))?;
        Ok(rows)
    }

    #[test]
    fn reads_valid_and_invalid_rows_with_line_numbers() {
        let rows = read("k,x,extra\na,1.5,z\n\"b\",-1,z\nq,abc\n").expect("readable");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].outcome, Ok(vec![Value::Float(1.5), Value::Text("a".into())]));
        assert_eq!(rows[1].raw, "\"b\",-1,z");
        let reasons = rows[1].outcome.clone().expect_err("below min");
        assert_eq!(reasons[0].rule, "min");
        let reasons = rows[2].outcome.clone().expect_err("ragged");
        assert_eq!(reasons[0].message, "the row has 2 fields but the header has 3");
    }

    #[test]
    fn quoted_newlines_keep_line_numbers_and_raw_text() {
        let rows = read("x,k\r\n1,\"a\r\nb\"\r\n2,a\r\n").expect("readable");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].raw, "1,\"a\r\nb\"");
        assert_eq!(rows[0].outcome.clone().expect_err("not allowed")[0].rule, "allowed");
        assert_eq!(rows[1].line, 4);
        assert!(rows[1].outcome.is_ok());
    }

    #[test]
    fn batch_level_problems_have_one_reason() {
        assert_eq!(read("").expect_err("empty").0, "the file is empty: no header line");
        assert_eq!(
            read("x,other\n1,2\n").expect_err("missing").0,
            "the header lacks column \"k\" required by the contract"
        );
        assert_eq!(read("x,k,x\n").expect_err("dup").0, "the header names column \"x\" twice");
        assert!(read("\u{feff}x,k\n1,a\n").is_ok());
    }
}
