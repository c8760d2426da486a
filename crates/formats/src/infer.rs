//! A starting contract inferred from CSV files: the delimiter, each column's type,
//! nullability, range (widened by a stated margin) and, for few distinct labels, the allowed
//! values; the event-time column; the null spellings and whole-number floats pandas writes.
//!
//! Every field is classified with the same parsers the validator uses, so a file the contract
//! was inferred from (whole, not sampled) is curated row for row under it.

use std::collections::BTreeSet;
use std::io::BufRead;

use mlops_contract::validate::check_field;
use mlops_contract::{Column, ColumnType, Contract, CsvFormat};

use crate::rows::records::{CsvRecords, Record, RecordLimits};

/// Spellings of a missing value that pandas reads as NaN by default (`read_csv`'s
/// `na_values`) and that pandas and other tools write; the empty field is missing anyway.
pub const NULL_SPELLINGS: &[&str] = &[
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL",
    "NaN", "None", "n/a", "nan", "null",
];

/// Delimiters tried, in order of preference when several fit.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Lines at the start of a file that the delimiter is chosen on.
const SNIFF_LINES: usize = 20;

/// How a contract is inferred.
#[derive(Debug, Clone)]
pub struct InferConfig {
    /// The dataset's name.
    pub dataset: String,
    /// Data rows read per file at most; `None` reads every row.
    pub sample: Option<u64>,
    /// Each numeric range is widened on both sides by this share of its observed span
    /// (0.1: 10%), and never below zero for a column with no negative value.
    pub margin: f64,
    /// A text column with at most this many distinct values (and at most one per two rows)
    /// becomes a category with its values allowed.
    pub max_categories: usize,
}

impl Default for InferConfig {
    fn default() -> Self {
        InferConfig { dataset: "dataset".into(), sample: None, margin: 0.1, max_categories: 20 }
    }
}

/// What inference saw of one column.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub name: String,
    pub values: u64,
    pub missing: u64,
    ints: u64,
    whole_floats: u64,
    floats: u64,
    bools: u64,
    timestamps: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Distinct texts, up to one more than the category limit.
    distinct: BTreeSet<String>,
    /// The spellings of a missing value seen, beside the empty field.
    spellings: BTreeSet<&'static str>,
    pub longest: usize,
}

/// A contract inferred, with what it was inferred from.
#[derive(Debug, Clone)]
pub struct Inferred {
    pub contract: Contract,
    pub rows: u64,
    pub columns: Vec<Observed>,
}

impl Inferred {
    /// The contract as YAML, after comments that say what each column's rules come from.
    pub fn to_yaml(&self, files: &[String], config: &InferConfig) -> String {
        let mut out = format!(
            "# Inferred by `mlops contract infer` from {} rows of {}.\n# Ranges are the observed ones widened by {}% of \
             their span on each side; edit it before use.\n",
            self.rows,
            files.join(", "),
            config.margin * 100.0
        );
        for (column, seen) in self.contract.columns.iter().zip(&self.columns) {
            let range = match (seen.min, seen.max) {
                (Some(lo), Some(hi)) if column.kind.is_numeric() => format!(", observed {lo} to {hi}"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "#   {}: {} values, {} missing{range}\n",
                column.name,
                seen.values - seen.missing,
                seen.missing
            ));
        }
        out.push_str(&self.contract.to_yaml());
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// Picks the delimiter under which the first lines of `head` have one same width, above one.
pub fn sniff_delimiter(head: &[u8]) -> Option<u8> {
    let mut best: Option<(usize, u8)> = None;
    for d in DELIMITERS {
        let limits = RecordLimits { max_row_bytes: head.len() + 1, raw_bytes: 0 };
        let mut records = CsvRecords::new(head, d, limits);
        let mut record = Record::default();
        let mut widths = Vec::new();
        while widths.len() < SNIFF_LINES && records.next_into(&mut record).unwrap_or(false) {
            widths.push(record.width());
        }
        // The last line of a cut head may be partial; it is not held against a delimiter.
        if widths.len() > 2 && head.last() != Some(&b'\n') {
            widths.pop();
        }
        let Some(&width) = widths.first() else { continue };
        if width > 1 && widths.iter().all(|&w| w == width) && best.is_none_or(|(w, _)| width > w) {
            best = Some((width, d));
        }
    }
    best.map(|(_, d)| d)
}

fn probe(kind: ColumnType) -> Column {
    Column { name: "probe".into(), kind, nullable: true, min: None, max: None, allowed: None, description: None }
}

struct Probes {
    int: Column,
    float: Column,
    bool: Column,
    timestamp: Column,
    plain: CsvFormat,
    whole: CsvFormat,
}

impl Observed {
    fn observe(&mut self, text: &str, probes: &Probes, max_categories: usize) {
        use mlops_contract::Value;
        self.values += 1;
        let text = text.trim();
        if text.is_empty() {
            self.missing += 1;
            return;
        }
        if let Some(spelling) = NULL_SPELLINGS.iter().find(|s| **s == text) {
            self.spellings.insert(spelling);
            self.missing += 1;
            return;
        }
        self.longest = self.longest.max(text.chars().count());
        if self.distinct.len() <= max_categories {
            self.distinct.insert(text.to_string());
        }
        let number = |v: f64, seen: &mut Observed| {
            seen.min = Some(seen.min.map_or(v, |m| m.min(v)));
            seen.max = Some(seen.max.map_or(v, |m| m.max(v)));
        };
        if let Ok(Value::Int(v)) = check_field(&probes.int, text, &probes.plain) {
            self.ints += 1;
            number(v as f64, self);
        } else if let Ok(Value::Int(v)) = check_field(&probes.int, text, &probes.whole) {
            self.whole_floats += 1;
            number(v as f64, self);
        } else if let Ok(Value::Float(v)) = check_field(&probes.float, text, &probes.plain) {
            self.floats += 1;
            number(v, self);
        } else if check_field(&probes.timestamp, text, &probes.plain).is_ok() {
            self.timestamps += 1;
        } else if check_field(&probes.bool, text, &probes.plain).is_ok() {
            self.bools += 1;
        }
    }

    /// The column's type, and whether it takes whole floats as ints.
    fn kind(&self, max_categories: usize) -> (ColumnType, bool) {
        let present = self.values - self.missing;
        let numbers = self.ints + self.whole_floats + self.floats;
        if present == 0 {
            (ColumnType::String, false)
        } else if self.ints == present {
            (ColumnType::Int, false)
        } else if self.ints + self.whole_floats == present && self.missing > 0 {
            // How pandas writes an integer column with gaps: as floats.
            (ColumnType::Int, true)
        } else if numbers == present {
            (ColumnType::Float, false)
        } else if self.timestamps == present {
            (ColumnType::Timestamp, false)
        } else if self.bools == present {
            (ColumnType::Bool, false)
        } else if self.distinct.len() <= max_categories && self.distinct.len() as u64 * 2 <= present {
            (ColumnType::Category, false)
        } else {
            (ColumnType::String, false)
        }
    }
}

/// A bound widened outward and rounded outward to three significant digits of the span.
fn widened(lo: f64, hi: f64, margin: f64, int: bool) -> (f64, f64) {
    let span = hi - lo;
    let pad = if span > 0.0 { span * margin } else { (hi.abs() * margin).max(1.0) };
    let mut min = lo - pad;
    if lo >= 0.0 && min < 0.0 {
        min = 0.0;
    }
    let max = hi + pad;
    let step = 10f64.powi((max - min).log10().floor() as i32 - 2);
    let (mut min, mut max) = ((min / step).floor() * step, (max / step).ceil() * step);
    if int {
        (min, max) = (min.floor(), max.ceil());
    }
    // Printing shortens the bounds to the digits that matter, as long as the data stay inside.
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let short = |v: f64| format!("{v:.decimals$}").parse::<f64>().unwrap_or(v);
    let (short_min, short_max) = (short(min), short(max));
    (if short_min <= lo { short_min } else { lo }, if short_max >= hi { short_max } else { hi })
}

fn event_time_of(columns: &[Column]) -> Option<String> {
    let timestamps: Vec<&Column> = columns.iter().filter(|c| c.kind == ColumnType::Timestamp).collect();
    let hinted = timestamps.iter().find(|c| {
        let name = c.name.to_ascii_lowercase();
        ["event", "time", "date", "_at", "ts"].iter().any(|h| name.contains(h))
    });
    hinted.or(timestamps.first()).map(|c| c.name.clone())
}

/// Infers a contract from CSV sources, given as (name, reader) pairs.
pub fn infer_csv(
    sources: Vec<(String, Box<dyn BufRead>)>,
    config: &InferConfig,
    mut progress: impl FnMut(&str, u64),
) -> Result<Inferred, String> {
    let probes = Probes {
        int: probe(ColumnType::Int),
        float: probe(ColumnType::Float),
        bool: probe(ColumnType::Bool),
        timestamp: probe(ColumnType::Timestamp),
        plain: CsvFormat::default(),
        whole: CsvFormat { whole_floats: true, ..CsvFormat::default() },
    };
    let mut delimiter = None;
    let mut header: Vec<String> = Vec::new();
    let mut columns: Vec<Observed> = Vec::new();
    let mut rows = 0;
    let limits = RecordLimits { max_row_bytes: crate::rows::MAX_ROW_BYTES, raw_bytes: 0 };
    for (name, mut input) in sources {
        let head = input.fill_buf().map_err(|e| format!("{name}: {e}"))?;
        let found = sniff_delimiter(head).unwrap_or(b',');
        match delimiter {
            None => delimiter = Some(found),
            Some(d) if d != found => {
                return Err(format!(
                    "{name}: its fields are split by {:?}, those of the files before it by {:?}",
                    found as char, d as char
                ));
            }
            Some(_) => {}
        }
        let mut records = CsvRecords::new(input, found, limits);
        let mut record = Record::default();
        if !records.next_into(&mut record).map_err(|e| format!("{name}: {e}"))? {
            return Err(format!("{name}: the file is empty: no header line"));
        }
        let names: Vec<String> = (0..record.width())
            .map(|i| {
                String::from_utf8_lossy(record.field(i).unwrap_or_default())
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let unique: BTreeSet<&String> = names.iter().collect();
        if unique.len() != names.len() || names.iter().any(String::is_empty) {
            return Err(format!("{name}: the header names a column twice or leaves one unnamed: {names:?}"));
        }
        if header.is_empty() {
            columns = names.iter().map(|n| Observed { name: n.clone(), ..Observed::default() }).collect();
            header = names;
        } else if names != header {
            return Err(format!("{name}: its header {names:?} differs from that of the files before it {header:?}"));
        }
        let mut read = 0u64;
        while config.sample.is_none_or(|s| read < s)
            && records.next_into(&mut record).map_err(|e| format!("{name}: {e}"))?
        {
            if record.width() == 1 && record.field(0).is_some_and(<[u8]>::is_empty) {
                continue;
            }
            if record.width() != header.len() {
                return Err(format!(
                    "{name}: line {} has {} fields where the header has {}",
                    record.line,
                    record.width(),
                    header.len()
                ));
            }
            for (i, seen) in columns.iter_mut().enumerate() {
                let text = std::str::from_utf8(record.field(i).unwrap_or_default())
                    .map_err(|_| format!("{name}: line {}: a field of {} is not UTF-8", record.line, seen.name))?;
                seen.observe(text, &probes, config.max_categories);
            }
            read += 1;
            if read.is_multiple_of(100_000) {
                progress(&name, read);
            }
        }
        progress(&name, read);
        rows += read;
    }
    if header.is_empty() {
        return Err("no file to infer a contract from".into());
    }
    let mut whole_floats = false;
    let mut contract_columns = Vec::with_capacity(columns.len());
    for seen in &columns {
        let (kind, whole) = seen.kind(config.max_categories);
        whole_floats |= whole;
        let (min, max) = match (kind.is_numeric(), seen.min, seen.max) {
            (true, Some(lo), Some(hi)) => {
                let (min, max) = widened(lo, hi, config.margin, kind == ColumnType::Int);
                (Some(min), Some(max))
            }
            _ => (None, None),
        };
        let allowed = (kind == ColumnType::Category).then(|| seen.distinct.iter().cloned().collect());
        contract_columns.push(Column {
            name: seen.name.clone(),
            kind,
            nullable: seen.missing > 0,
            min,
            max,
            allowed,
            description: None,
        });
    }
    let delimiter = delimiter.unwrap_or(b',') as char;
    // Only the spellings seen, so that the contract says what these files hold.
    let spellings: BTreeSet<&str> = columns.iter().flat_map(|c| c.spellings.iter().copied()).collect();
    let null_values: Vec<String> = spellings.into_iter().map(str::to_string).collect();
    let event_time = event_time_of(&contract_columns);
    let yaml_contract = Contract {
        dataset: config.dataset.clone(),
        version: 1,
        target: None,
        features: Vec::new(),
        event_time,
        id: None,
        columns: contract_columns,
        csv: CsvFormat { delimiter, header: true, null_values, whole_floats },
    };
    // The contract goes through the same checks as one read from a file.
    let contract = Contract::from_yaml(&yaml_contract.to_yaml(), "the inferred contract").map_err(|e| e.to_string())?;
    Ok(Inferred { contract, rows, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(text: &str) -> Inferred {
        let source: Box<dyn BufRead> = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        infer_csv(vec![("t.csv".into(), source)], &InferConfig::default(), |_, _| {}).expect("inferred")
    }

    #[test]
    fn types_nulls_ranges_and_labels_are_inferred() {
        let mut text = String::from("when;n;x;k;flag;note\n");
        for i in 0..40 {
            let n = if i % 7 == 0 { "NA".to_string() } else { format!("{}.0", i) };
            text.push_str(&format!(
                "2026-04-{:02}T10:00:00Z;{n};{};{};{};free text {i}\n",
                1 + i % 28,
                i as f64 / 4.0,
                ["a", "b"][i % 2],
                i % 2 == 0
            ));
        }
        let inferred = infer(&text);
        let c = &inferred.contract;
        assert_eq!(c.csv.delimiter, ';');
        assert!(c.csv.whole_floats && c.csv.null_values.contains(&"NA".to_string()));
        assert_eq!(c.event_time.as_deref(), Some("when"));
        let kinds: Vec<ColumnType> = c.columns.iter().map(|c| c.kind).collect();
        use ColumnType as T;
        assert_eq!(kinds, [T::Timestamp, T::Int, T::Float, T::Category, T::Bool, T::String]);
        assert!(c.columns[1].nullable && !c.columns[2].nullable);
        assert_eq!(c.columns[3].allowed.as_deref(), Some(&["a".to_string(), "b".to_string()][..]));
        let (lo, hi) = (c.columns[2].min.expect("min"), c.columns[2].max.expect("max"));
        assert!(lo == 0.0 && (9.75..=11.0).contains(&hi), "x in 0..9.75 widened: {lo} {hi}");
        // The file it came from is read without a complaint under it.
        let rows = crate::rows::read_batch(c, crate::rows::FileKind::Csv, text.as_bytes(), |row| {
            row.outcome.map(|_| ()).map_err(|r| format!("line {}: {r:?}", row.line))
        });
        assert!(rows.is_ok(), "{rows:?}");
    }

    #[test]
    fn bounds_hold_the_data_for_any_values() {
        for (lo, hi, int) in
            [(-3.2, 7.9, false), (0.0, 0.0, true), (1e-9, 2e-9, false), (-5.0, -5.0, true), (3750.0, 6300.0, true)]
        {
            let (min, max) = widened(lo, hi, 0.1, int);
            assert!(min <= lo && max >= hi, "{lo}..{hi} -> {min}..{max}");
            if lo >= 0.0 {
                assert!(min >= 0.0);
            }
        }
    }

    #[test]
    fn the_delimiter_is_the_one_that_gives_one_width() {
        assert_eq!(sniff_delimiter(b"a,b;c\n1,2;3\n"), Some(b','));
        assert_eq!(sniff_delimiter(b"a;b;c\n1;2,5;3\n"), Some(b';'));
        assert_eq!(sniff_delimiter(b"a\tb\n\"x;y\"\t2\n"), Some(b'\t'));
        assert_eq!(sniff_delimiter(b"single\n1\n"), None);
    }
}
