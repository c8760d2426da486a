//! Reading batches (CSV or JSON Lines) row by row from a stream, against a contract.

use std::io::BufRead;

use mlops_contract::Contract;
use mlops_contract::json_row::{JsonRow, RowReader};
use mlops_contract::validate::{Reason, Value, bounded, check_field};

pub mod records;

use records::{CsvRecords, Lines, Position, Record, RecordLimits};

/// The raw text kept for a quarantined row is cut to this many bytes.
pub const RAW_TEXT_LIMIT: usize = 4096;

/// Rows longer than this many bytes are quarantined without being held in memory.
pub const MAX_ROW_BYTES: usize = 16 << 20;

/// The record limits batches are read with.
pub const LIMITS: RecordLimits = RecordLimits { max_row_bytes: MAX_ROW_BYTES, raw_bytes: RAW_TEXT_LIMIT };

/// One data row of a batch and what validation made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// 1-based line number in the source file where the row starts (the header is line 1).
    pub line: u64,
    /// The row's source text without its line terminator, cut to [`RAW_TEXT_LIMIT`] bytes.
    pub raw: &'a [u8],
    pub outcome: Result<Vec<Value>, Vec<Reason>>,
}

impl Row<'_> {
    /// The row's bounded source text, with invalid UTF-8 replaced.
    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(self.raw).into_owned()
    }
}

/// Why reading a batch stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError<E = std::convert::Infallible> {
    /// A problem that makes the whole batch unreadable, with one reason for all of it, and
    /// the number of data rows the batch holds.
    #[error("{reason}")]
    Batch { reason: String, rows: u64 },
    /// The input failed part-way (a transport error or undecodable compression).
    #[error("{0}")]
    Input(#[from] std::io::Error),
    /// The row consumer failed (e.g. writing outputs).
    #[error("{0}")]
    Consumer(E),
}

/// What a file or object holds, by its name: the one format detection of lambda-mlops.
///
/// `.jsonl` and `.ndjson` are JSON Lines, `.json` is a profile (as ingest and `mlops profile`
/// write them), anything else is CSV in the contract's format; a trailing `.gz` is ignored
/// here and means gzip ([`is_gzip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Csv,
    Jsonl,
    Profile,
}

impl FileKind {
    /// The kind a file name announces.
    pub fn of(name: &str) -> FileKind {
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if [".jsonl", ".ndjson"].iter().any(|s| name.ends_with(s)) {
            FileKind::Jsonl
        } else if name.ends_with(".json") {
            FileKind::Profile
        } else {
            FileKind::Csv
        }
    }
}

/// Opens a local file for reading, decompressing it when its name ends in `.gz`.
pub fn open_file(path: &std::path::Path) -> std::io::Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path)?;
    let name = path.to_string_lossy();
    Ok(if is_gzip(&name, None) {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file))))
    } else {
        Box::new(std::io::BufReader::with_capacity(256 << 10, file))
    })
}

/// Reads a batch of rows and adds its valid rows to `samples` (and counts the rejected ones).
pub fn read_samples(
    samples: &mut mlops_drift::Samples,
    contract: &Contract,
    name: &str,
    input: impl BufRead,
) -> Result<(), ReadError> {
    read_batch(contract, FileKind::of(name), input, |row| {
        match &row.outcome {
            Ok(values) => samples.add_row(contract, values),
            Err(_) => samples.add_rejected(),
        }
        Ok(())
    })
}

/// Whether a batch is gzip-compressed: a `.gz` name or `Content-Encoding: gzip`.
pub fn is_gzip(name: &str, content_encoding: Option<&str>) -> bool {
    name.to_ascii_lowercase().ends_with(".gz")
        || content_encoding.is_some_and(|e| e.split(',').any(|p| p.trim().eq_ignore_ascii_case("gzip")))
}

/// Reads a batch in either format from a stream; see [`read_csv`] and [`read_jsonl`].
pub fn read_batch<E>(
    contract: &Contract,
    kind: FileKind,
    input: impl BufRead,
    on_row: impl FnMut(Row<'_>) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    match kind {
        FileKind::Csv => read_csv(contract, input, on_row),
        FileKind::Jsonl => read_jsonl(contract, input, on_row),
        FileKind::Profile => Err(ReadError::Batch {
            reason: "a .json file is read as a profile, not as rows; send rows as .csv, .jsonl or .ndjson".into(),
            rows: 0,
        }),
    }
}

/// Reads a JSON Lines batch: one object per line, fields by column name. Blank lines are not
/// rows; a line that is not a JSON object is a row with that reason. Extra fields are ignored.
pub fn read_jsonl<E>(
    contract: &Contract,
    input: impl BufRead,
    mut on_row: impl FnMut(Row<'_>) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    let mut lines = Lines::new(input, LIMITS);
    let mut record = Record::default();
    let reader = RowReader::new(&contract.columns);
    let mut first = true;
    let mut rows = 0u64;
    while lines.next_into(&mut record)? {
        let mut line = record.field(0).unwrap_or_default();
        if std::mem::take(&mut first) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        let outcome = if record.oversized {
            Err(vec![oversized(record.len)])
        } else if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            match reader.parse(line) {
                Ok(Ok(fields)) => check_object(contract, &fields),
                Ok(Err(kind)) => Err(vec![Reason::row("json", format!("the line is JSON but not an object: {kind}"))]),
                Err(e) if std::str::from_utf8(line).is_err() => {
                    Err(vec![Reason::row("encoding", format!("the line is not valid UTF-8 ({e})"))])
                }
                Err(e) => Err(vec![Reason::row("json", format!("the line is not valid JSON: {e}"))]),
            }
        };
        rows += 1;
        on_row(Row { line: record.line, raw: record.raw(), outcome }).map_err(ReadError::Consumer)?;
    }
    if rows == 0 {
        return Err(ReadError::Batch { reason: "the file is empty: no JSON Lines row".into(), rows: 0 });
    }
    Ok(())
}

fn oversized(len: u64) -> Reason {
    Reason::row("size", format!("the row is {len} bytes long, over the limit of {MAX_ROW_BYTES} bytes"))
}

/// Checks the contract's fields of one JSON Lines object; a missing field is null.
fn check_object(contract: &Contract, row: &JsonRow) -> Result<Vec<Value>, Vec<Reason>> {
    let mut values = Vec::with_capacity(contract.columns.len());
    let mut reasons = Vec::new();
    for (column, value) in contract.columns.iter().zip(&row.values) {
        match mlops_contract::validate::check_json(column, value.as_ref().unwrap_or(&serde_json::Value::Null)) {
            Ok(v) => values.push(v),
            Err(mut r) => reasons.append(&mut r),
        }
    }
    if reasons.is_empty() { Ok(values) } else { Err(reasons) }
}

/// Reads a CSV batch from a stream and hands every data row, valid or not, to `on_row`.
///
/// The contract's `csv` section sets the delimiter and whether a header line names the
/// columns. Values come back in contract column order. Extra columns in the file are
/// ignored; a contract column missing from the header, a repeated header name or an
/// unreadable header reject the whole batch (the rest of the input is read to count its rows).
pub fn read_csv<E>(
    contract: &Contract,
    input: impl BufRead,
    on_row: impl FnMut(Row<'_>) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    let (header, input, position) = read_csv_header(contract, input)?;
    read_csv_rows(contract, &header, input, position, false, on_row)
}

/// Where a CSV batch's contract columns sit in its rows, from its header (or the contract's
/// order when the file has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvHeader {
    positions: Vec<usize>,
    width: usize,
}

/// Reads a CSV batch's header line (when the contract's `csv` section says it has one) and
/// returns it with the stream after it and where that stands, so that the rows can be read
/// from there, in one piece or in chunks ([`read_csv_rows`]).
pub fn read_csv_header<R: BufRead, E>(contract: &Contract, input: R) -> Result<(CsvHeader, R, Position), ReadError<E>> {
    let format = &contract.csv;
    if !format.header {
        let all = (0..contract.columns.len()).collect();
        return Ok((CsvHeader { positions: all, width: contract.columns.len() }, input, Position::START));
    }
    let mut records = CsvRecords::new(input, format.delimiter as u8, LIMITS);
    let mut record = Record::default();
    if !records.next_into(&mut record)? {
        return Err(ReadError::Batch { reason: "the file is empty: no header line".into(), rows: 0 });
    }
    match header_positions(contract, &record) {
        Ok((positions, width)) => {
            let (input, position) = records.into_parts();
            Ok((CsvHeader { positions, width }, input, position))
        }
        Err(reason) => Err(ReadError::Batch { reason: bounded(reason), rows: count_rest(&mut records, &mut record)? }),
    }
}

/// Reads CSV rows that start at a record's start at `position`, against `header`, and hands
/// each to `on_row`. With `more_follows` the input is one chunk of the batch, not its end.
pub fn read_csv_rows<E>(
    contract: &Contract,
    header: &CsvHeader,
    input: impl BufRead,
    position: Position,
    more_follows: bool,
    mut on_row: impl FnMut(Row<'_>) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    let mut records = CsvRecords::resume(input, contract.csv.delimiter as u8, LIMITS, position, more_follows);
    let mut record = Record::default();
    while records.next_into(&mut record)? {
        let outcome = if record.oversized {
            Err(vec![oversized(record.len)])
        } else {
            check_record(contract, &header.positions, header.width, &record)
        };
        on_row(Row { line: record.line, raw: record.raw(), outcome }).map_err(ReadError::Consumer)?;
    }
    Ok(())
}

/// The position of each contract column in the header, and the header's width (fields per
/// row). Trailing empty names — a common export artefact (`a,b,,`) — are dropped with their
/// columns; any name given twice rejects the batch.
///
/// The names are read in place from the record: beside it, the check holds 4 bytes per name
/// (their order, sorted to find a repeated one) whatever their number, in O(n log n) time.
fn header_positions(contract: &Contract, record: &Record) -> Result<(Vec<usize>, usize), String> {
    if record.oversized {
        return Err(format!("the header line is {} bytes long, over the limit of {MAX_ROW_BYTES} bytes", record.len));
    }
    let width = record.width();
    let name = |i: usize| -> Result<&str, String> {
        std::str::from_utf8(record.field(i).unwrap_or_default())
            .map(str::trim)
            .map_err(|_| "the header line is not valid UTF-8".to_string())
    };
    // Validate every name once; keep none of them but the contract's.
    let mut kept = width;
    while kept > 1 && name(kept - 1)?.is_empty() {
        kept -= 1;
    }
    for i in 0..kept {
        name(i)?;
    }
    let mut order: Vec<u32> = (0..kept as u32).collect();
    let key = |i: &u32| name(*i as usize).unwrap_or_default();
    order.sort_unstable_by(|a, b| key(a).cmp(key(b)));
    if let Some(pair) = order.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
        return Err(format!("the header names column {} twice", mlops_contract::validate::shown(key(&pair[0]))));
    }
    let positions = contract
        .columns
        .iter()
        .map(|c| {
            let found = order.binary_search_by(|i| key(i).cmp(c.name.as_str())).ok();
            found.map(|k| order[k] as usize).ok_or_else(|| {
                let missing = format!("the header lacks column {:?} required by the contract", c.name);
                let names: Vec<&str> = (0..kept).filter_map(|i| name(i).ok()).collect();
                match other_delimiter(contract, &names) {
                    Some('\t') => {
                        format!("{missing}; the header reads as tab-delimited: set `csv: {{delimiter: \"\\t\"}}` in the contract")
                    }
                    Some(d) => format!(
                        "{missing}; the header reads as '{d}'-delimited: set `csv: {{delimiter: '{d}'}}` in the contract"
                    ),
                    None => missing,
                }
            })
        })
        .collect::<Result<Vec<usize>, String>>()?;
    Ok((positions, width))
}

/// A delimiter other than the contract's under which the header names every contract column.
fn other_delimiter(contract: &Contract, names: &[&str]) -> Option<char> {
    let ours = contract.csv.delimiter;
    let line = names.join(&ours.to_string());
    [',', ';', '\t', '|'].into_iter().filter(|&d| d != ours).find(|&d| {
        let split: Vec<&str> = line.split(d).map(|n| n.trim().trim_matches('"')).collect();
        contract.columns.iter().all(|c| split.contains(&c.name.as_str()))
    })
}

/// The data rows left in a batch that is rejected whole.
fn count_rest(records: &mut CsvRecords<impl BufRead>, record: &mut Record) -> std::io::Result<u64> {
    let mut rows = 0;
    while records.next_into(record)? {
        rows += 1;
    }
    Ok(rows)
}

fn check_record(
    contract: &Contract,
    positions: &[usize],
    width: usize,
    record: &Record,
) -> Result<Vec<Value>, Vec<Reason>> {
    // A quote that is never closed swallows the rest of the input into one record: it is the
    // last one, spans lines, and holds an odd number of quote characters.
    if record.at_end && record.quotes % 2 == 1 && record.last_line > record.line {
        return Err(vec![Reason::row(
            "quote",
            format!(
                "a quote opened on line {} is never closed: lines {} to {} were read as one row",
                record.line, record.line, record.last_line
            ),
        )]);
    }
    if record.width() != width {
        return Err(vec![Reason::row(
            "fields",
            format!("the row has {} fields but the header has {width}", record.width()),
        )]);
    }
    // The record's text is checked as UTF-8 once; a field is then a slice of it, unless it
    // starts or ends inside a character (bytes of one character split by a delimiter).
    let content = std::str::from_utf8(record.content()).ok();
    let mut values = Vec::with_capacity(positions.len());
    let mut reasons = Vec::new();
    for (column, &pos) in contract.columns.iter().zip(positions) {
        let checked = content.zip(record.span(pos)).and_then(|(all, span)| all.get(span));
        let Some(text) = checked.or_else(|| std::str::from_utf8(record.field(pos).unwrap_or_default()).ok()) else {
            reasons.push(Reason::column(
                &column.name,
                "encoding",
                format!("{}: the value is not valid UTF-8", column.name),
            ));
            continue;
        };
        match check_field(column, text, &contract.csv) {
            Ok(v) => values.push(v),
            Err(mut r) => reasons.append(&mut r),
        }
    }
    if reasons.is_empty() { Ok(values) } else { Err(reasons) }
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

    /// Rows as (line, raw text, outcome).
    type Owned = (u64, String, Result<Vec<Value>, Vec<Reason>>);

    fn read(text: &str) -> Result<Vec<Owned>, String> {
        let mut rows = Vec::new();
        read_csv(&contract(), text.as_bytes(), |r| {
            rows.push((r.line, r.raw_text(), r.outcome));
            Ok::<(), std::convert::Infallible>(())
        })
        .map_err(|e| e.to_string())?;
        Ok(rows)
    }

    #[test]
    fn reads_valid_and_invalid_rows_with_line_numbers() {
        let rows = read("k,x,extra\na,1.5,z\n\"b\",-1,z\nq,abc\n").expect("readable");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].2, Ok(vec![Value::Float(1.5), Value::Text("a".into())]));
        assert_eq!(rows[1].1, "\"b\",-1,z");
        let reasons = rows[1].2.clone().expect_err("below min");
        assert_eq!(reasons[0].rule, "min");
        let reasons = rows[2].2.clone().expect_err("ragged");
        assert_eq!(reasons[0].message, "the row has 2 fields but the header has 3");
    }

    #[test]
    fn quoted_newlines_keep_line_numbers_and_raw_text() {
        let rows = read("x,k\r\n1,\"a\r\nb\"\r\n2,a\r\n").expect("readable");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, "1,\"a\r\nb\"");
        assert_eq!(rows[0].2.clone().expect_err("not allowed")[0].rule, "allowed");
        assert_eq!(rows[1].0, 4);
        assert!(rows[1].2.is_ok());
    }

    #[test]
    fn one_format_detection_for_every_reader() {
        for (name, kind) in [
            ("b.csv", FileKind::Csv),
            ("b.CSV.gz", FileKind::Csv),
            ("b.tsv", FileKind::Csv),
            ("b.jsonl", FileKind::Jsonl),
            ("b.ndjson.gz", FileKind::Jsonl),
            ("baseline.json", FileKind::Profile),
            ("p.json.gz", FileKind::Profile),
        ] {
            assert_eq!(FileKind::of(name), kind, "{name}");
        }
        assert!(is_gzip("b.csv.GZ", None) && is_gzip("b.csv", Some("identity, gzip")) && !is_gzip("b.csv", None));
        // Rows are never read from a profile's name: the batch is refused with one reason.
        match read_batch(&contract(), FileKind::Profile, &b"{}"[..], |_| Ok::<(), std::convert::Infallible>(())) {
            Err(ReadError::Batch { reason, rows: 0 }) => assert!(reason.contains("read as a profile"), "{reason}"),
            other => panic!("expected a batch rejection, got {other:?}"),
        }
    }

    #[test]
    fn batch_level_problems_have_one_reason() {
        assert_eq!(read("").expect_err("empty"), "the file is empty: no header line");
        assert_eq!(
            read("x,other\n1,2\n").expect_err("missing"),
            "the header lacks column \"k\" required by the contract"
        );
        assert_eq!(read("x,k,x\n").expect_err("dup"), "the header names column \"x\" twice");
        assert_eq!(
            read("x;k\n1;a\n").expect_err("semicolons"),
            "the header lacks column \"x\" required by the contract; the header reads as ';'-delimited: set \
             `csv: {delimiter: ';'}` in the contract"
        );
        let tabs = read("\"x\"\t\"k\"\n").expect_err("tabs");
        assert!(tabs.ends_with("tab-delimited: set `csv: {delimiter: \"\\t\"}` in the contract"), "{tabs}");
        assert!(!read("x;other\n").expect_err("not all columns").contains("delimited"));
        assert!(read("\u{feff}x,k\n1,a\n").is_ok());
        // A repeated name of 1 MiB is quoted cut short, with its size.
        let long = "n".repeat(1 << 20);
        let e = read(&format!("x,k,{long},{long}\n")).expect_err("dup");
        assert!(e.len() < 200 && e.contains("(1048576 bytes)") && e.ends_with(" twice"), "{}", &e[..e.len().min(200)]);
        // 200,000 distinct names are checked by sorting (quadratically this took minutes).
        let wide: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
        let rows = read(&format!("x,k,{}\n1,a,{}\n", wide.join(","), vec!["0"; wide.len()].join(","))).expect("wide");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].2.is_ok());
    }

    #[test]
    fn an_unterminated_quote_is_named() {
        let rows = read("x,k\n1,a\n2,\"b\n3,a\n4,b\n").expect("readable");
        assert_eq!(rows.len(), 2);
        let reasons = rows[1].2.clone().expect_err("open quote");
        assert_eq!(reasons[0].message, "a quote opened on line 3 is never closed: lines 3 to 5 were read as one row");
        // A stray quote inside an unquoted field is a literal character, not an open quote.
        let rows = read("x,k\n1,a\n2,b\"c\n").expect("readable");
        let reasons = rows[1].2.clone().expect_err("not an allowed label");
        assert!(reasons[0].message.contains("is not one of a, b"), "{}", reasons[0].message);
    }

    #[test]
    fn line_numbers_are_right_for_lf_crlf_and_cr() {
        for text in ["x,k\n1,a\n\n2,b\n", "x,k\r\n1,a\r\n\r\n2,b\r\n", "x,k\r1,a\r\r2,b\r"] {
            let rows = read(text).expect("readable");
            let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
            assert_eq!(lines, [2, 4], "{text:?}");
        }
    }

    #[test]
    fn a_row_of_millions_of_empty_fields_is_bounded_like_a_long_one() {
        // Three million commas: a few megabytes of text, but 24 MB of field offsets.
        let text = format!("x,k\n{}\n1,a\n", ",".repeat(3_000_000));
        let rows = read(&text).expect("readable");
        assert_eq!(rows.len(), 2);
        let reasons = rows[0].2.clone().expect_err("oversized");
        assert!(reasons[0].message.contains("over the limit"), "{}", reasons[0].message);
        assert!(rows[1].2.is_ok(), "the next row is read as usual");
        assert_eq!(rows[1].0, 3);
    }

    #[test]
    fn trailing_empty_header_names_are_dropped_with_their_columns() {
        let rows = read("x,k,,\n1,a,,\n2,b,,\n").expect("readable");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].2, Ok(vec![Value::Float(2.0), Value::Text("b".into())]));
        // Rows keep the header's width: one without the trailing fields is short.
        let rows = read("x,k,,\n1,a\n").expect("readable");
        let reasons = rows[0].2.clone().expect_err("short row");
        assert_eq!(reasons[0].message, "the row has 2 fields but the header has 4");
        // Two empty names that are not trailing are still a repeated name.
        assert_eq!(read(",x,,k\n").expect_err("dup"), "the header names column \"\" twice");
    }

    #[test]
    fn an_empty_json_lines_object_is_rejected_whole() {
        for text in ["", "\n\n  \n"] {
            let e = read_jsonl(&contract(), text.as_bytes(), |_| Ok::<(), std::convert::Infallible>(()))
                .expect_err("empty");
            assert!(matches!(&e, ReadError::Batch { rows: 0, .. }), "{e:?}");
            assert_eq!(e.to_string(), "the file is empty: no JSON Lines row");
        }
    }
}
