//! Reading CSV batches row by row against a contract.

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

/// Reads a CSV batch with a header line and hands every data row, valid or not, to `on_row`.
///
/// Values come back in contract column order. Extra columns in the file are ignored; a
/// contract column missing from the header, a repeated header name or an unreadable header
/// reject the whole batch.
pub fn read_csv(contract: &Contract, bytes: &[u8], mut on_row: impl FnMut(Row)) -> Result<(), BatchError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();

    let header = match reader.read_byte_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => return Err(BatchError("the file is empty: no header line".into())),
        Err(e) => return Err(BatchError(format!("the header line is unreadable: {e}"))),
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
