//! Checking single values against a contract column.
//!
//! Text fields (CSV) and JSON values (prediction requests) go through the same rules, so a
//! row that ingest would quarantine is also one that predict rejects, with the same reason.

use serde::{Deserialize, Serialize};

use crate::contract::{Column, ColumnType, CsvFormat};

/// The text of a category, string or timestamp value: kept inline up to 24 bytes, so that a
/// label, an identifier or a timestamp costs no allocation per field.
pub type Text = compact_str::CompactString;

/// A typed value that passed its column's type check.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Float(f64),
    Int(i64),
    Bool(bool),
    /// Category, string and timestamp values keep their text.
    Text(Text),
}

impl Value {
    /// The value as a number, for numeric columns.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// Writes the value as CSV text (`Null` is the empty field).
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Float(v) => v.to_string(),
            Value::Int(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
            Value::Text(s) => s.to_string(),
        }
    }
}

/// One broken rule: which column, which rule, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The column at fault; absent for row-level problems such as a wrong field count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A stable rule name: `type`, `nullable`, `min`, `max`, `allowed`, `fields`, `unknown`.
    pub rule: String,
    pub message: String,
}

/// Longest reason message, in characters: a message is cut to this length, whatever it
/// quotes (values are already quoted cut short, see [`shown`]; this bounds the rest).
pub const REASON_CHARS: usize = 500;

/// A message cut to [`REASON_CHARS`] characters, ending in `…` when it was cut.
pub fn bounded(message: String) -> String {
    if message.char_indices().nth(REASON_CHARS).is_none() {
        return message;
    }
    let mut cut: String = message.chars().take(REASON_CHARS - 1).collect();
    cut.push('…');
    cut
}

impl Reason {
    /// A reason about one column; the column name is shown cut short and the message is
    /// [`bounded`].
    pub fn column(column: &str, rule: &str, message: String) -> Reason {
        let column = crate::json_row::shown_key(column);
        Reason { column: Some(column), rule: rule.to_string(), message: bounded(message) }
    }

    /// A reason about a whole row; the message is [`bounded`].
    pub fn row(rule: &str, message: String) -> Reason {
        Reason { column: None, rule: rule.to_string(), message: bounded(message) }
    }
}

/// Parses a CSV field in the default dialect and checks it against every rule of its column.
pub fn check_text(column: &Column, raw: &str) -> Result<Value, Vec<Reason>> {
    check_field(column, raw, &CsvFormat::default())
}

/// Parses a CSV field as the contract's dialect reads it (its null values, whole floats for
/// ints) and checks it against every rule of its column.
pub fn check_field(column: &Column, raw: &str, csv: &CsvFormat) -> Result<Value, Vec<Reason>> {
    // Most fields start and end with a visible ASCII character: they skip the Unicode trim.
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    let bytes = raw.as_bytes();
    let text = if visible(bytes.first()) && visible(bytes.last()) { raw } else { raw.trim() };
    let value = if csv.is_null(text) { Value::Null } else { parse_text(column, text, csv).map_err(|r| vec![r])? };
    check_rules(column, value)
}

/// Timestamps up to this many bytes are remembered by [`timestamp_micros`].
const REMEMBERED_TIMESTAMP_BYTES: usize = 64;

thread_local! {
    /// The last timestamp text read on this thread and what it read as: validation, the
    /// curated date, the Parquet column and the profile all read the same value of a row in
    /// turn, and the text is parsed once for all of them.
    static LAST_TIMESTAMP: std::cell::RefCell<(String, Option<i64>)> = const { std::cell::RefCell::new((String::new(), None)) };
}

/// Microseconds since the epoch of a timestamp value the contract accepted (RFC 3339, or a
/// date or naive date-time read as UTC); `None` for any other text.
pub fn timestamp_micros(text: &str) -> Option<i64> {
    if text.len() > REMEMBERED_TIMESTAMP_BYTES {
        return parse_timestamp(text);
    }
    LAST_TIMESTAMP.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != text {
            last.1 = parse_timestamp(text);
            last.0.clear();
            last.0.push_str(text);
        }
        last.1
    })
}

fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_micros())
}

/// Powers of ten that an f64 holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// The value of a plain decimal (`-12.345`: a sign, digits, at most one point, no exponent)
/// whose digits an f64 holds exactly, or `None` for any other text, which the standard parser
/// then reads. The digits as an integer below 2^53 and a power of ten up to 10^22 are both
/// exact, so their one correctly rounded division is the value the standard parser gives
/// (Clinger's fast path); measurements are nearly all of this form.
fn decimal(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 17 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut point = None;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(b - b'0'),
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    // A point alone, or at either end, is left to the standard parser's rules.
    let scale = match point {
        None => 0,
        Some(i) if i == 0 || i + 1 == digits.len() => return None,
        Some(i) => digits.len() - i - 1,
    };
    if mantissa >= 1 << 53 {
        return None;
    }
    let value = mantissa as f64 / *EXACT_POWERS_OF_TEN.get(scale)?;
    Some(if negative { -value } else { value })
}

/// A float text that holds a whole number an i64 keeps exactly.
fn whole_float(text: &str) -> Option<i64> {
    const EXACT: f64 = (1u64 << 53) as f64;
    let v: f64 = text.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() <= EXACT).then_some(v as i64)
}

/// Checks a JSON value (from a prediction request) against every rule of its column.
pub fn check_json(column: &Column, json: &serde_json::Value) -> Result<Value, Vec<Reason>> {
    let value = from_json(column, json).map_err(|r| vec![r])?;
    check_rules(column, value)
}

/// Values echoed in messages are cut to this many characters.
const SHOWN_CHARS: usize = 40;

/// A value as messages quote it: in quotes, cut to [`SHOWN_CHARS`] characters with its size.
pub fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{:?}… ({} bytes)", head, text.len())
    }
}

fn parse_text(column: &Column, text: &str, csv: &CsvFormat) -> Result<Value, Reason> {
    let name = &column.name;
    // Quoting the value is for messages only; valid values never pay for it.
    let text_shown = || shown(text);
    match column.kind {
        ColumnType::Float => match decimal(text).map_or_else(|| text.parse::<f64>(), Ok) {
            Ok(v) if v.is_finite() => Ok(Value::Float(v)),
            Ok(_) => Err(Reason::column(name, "type", format!("{name}: {} is not a finite number", text_shown()))),
            Err(_) => Err(Reason::column(name, "type", format!("{name}: {} is not a number", text_shown()))),
        },
        ColumnType::Int => match text.parse::<i64>() {
            Ok(v) => Ok(Value::Int(v)),
            Err(_) => match whole_float(text).filter(|_| csv.whole_floats) {
                Some(v) => Ok(Value::Int(v)),
                None => Err(Reason::column(name, "type", format!("{name}: {} is not a whole number", text_shown()))),
            },
        },
        ColumnType::Bool => {
            // Compared without case and without a lowered copy of the text.
            let is = |word: &str| text.eq_ignore_ascii_case(word);
            if is("true") || text == "1" || is("yes") {
                Ok(Value::Bool(true))
            } else if is("false") || text == "0" || is("no") {
                Ok(Value::Bool(false))
            } else {
                Err(Reason::column(name, "type", format!("{name}: {} is not true or false", text_shown())))
            }
        }
        ColumnType::Timestamp => {
            if timestamp_micros(text).is_some() {
                Ok(Value::Text(text.into()))
            } else {
                Err(Reason::column(
                    name,
                    "type",
                    format!("{name}: {} is not a date or RFC 3339 timestamp", text_shown()),
                ))
            }
        }
        ColumnType::Category | ColumnType::String => Ok(Value::Text(text.into())),
    }
}

fn from_json(column: &Column, json: &serde_json::Value) -> Result<Value, Reason> {
    use serde_json::Value as J;
    let name = &column.name;
    let wrong =
        |expected: &str| Reason::column(name, "type", format!("{name}: expected {expected}, got {}", json_kind(json)));
    match (column.kind, json) {
        (_, J::Null) => Ok(Value::Null),
        (ColumnType::Float, J::Number(n)) => n.as_f64().map(Value::Float).ok_or_else(|| wrong("a number")),
        (ColumnType::Float, _) => Err(wrong("a number")),
        (ColumnType::Int, J::Number(n)) => match n.as_i64() {
            Some(v) => Ok(Value::Int(v)),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::Int(f as i64)),
                _ => Err(wrong("a whole number")),
            },
        },
        (ColumnType::Int, _) => Err(wrong("a whole number")),
        (ColumnType::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
        (ColumnType::Bool, _) => Err(wrong("true or false")),
        (ColumnType::Timestamp, J::String(s)) => parse_text(column, s, &CsvFormat::default()),
        (ColumnType::Category | ColumnType::String, J::String(s)) => Ok(Value::Text(s.as_str().into())),
        (ColumnType::Category | ColumnType::String | ColumnType::Timestamp, _) => Err(wrong("a string")),
    }
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn check_rules(column: &Column, value: Value) -> Result<Value, Vec<Reason>> {
    let name = &column.name;
    let mut reasons = Vec::new();
    match &value {
        Value::Null if !column.nullable => {
            reasons.push(Reason::column(name, "nullable", format!("{name}: a value is required")));
        }
        Value::Null => {}
        _ => {
            if let Some(v) = value.as_f64() {
                if let Some(min) = column.min.filter(|min| v < *min) {
                    reasons.push(Reason::column(name, "min", format!("{name}: {v} is below the minimum {min}")));
                }
                if let Some(max) = column.max.filter(|max| v > *max) {
                    reasons.push(Reason::column(name, "max", format!("{name}: {v} is above the maximum {max}")));
                }
            }
            // Labels are short: comparing first bytes spares a call to compare most of them.
            if let (Value::Text(s), Some(allowed)) = (&value, &column.allowed)
                && !allowed.iter().any(|a| a.as_bytes().first() == s.as_bytes().first() && a == s)
            {
                reasons.push(Reason::column(
                    name,
                    "allowed",
                    format!("{name}: {} is not one of {}", shown(s), allowed.join(", ")),
                ));
            }
        }
    }
    if reasons.is_empty() { Ok(value) } else { Err(reasons) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(kind: ColumnType) -> Column {
        Column { name: "c".into(), kind, nullable: false, min: None, max: None, allowed: None, description: None }
    }

    fn rules(result: Result<Value, Vec<Reason>>) -> Vec<String> {
        result.expect_err("must fail").into_iter().map(|r| r.rule).collect()
    }

    #[test]
    fn parses_each_type() {
        assert_eq!(check_text(&col(ColumnType::Float), " 3.5 "), Ok(Value::Float(3.5)));
        assert_eq!(check_text(&col(ColumnType::Int), "42"), Ok(Value::Int(42)));
        assert_eq!(check_text(&col(ColumnType::Bool), "Yes"), Ok(Value::Bool(true)));
        assert_eq!(check_text(&col(ColumnType::Timestamp), "2024-01-02"), Ok(Value::Text("2024-01-02".into())));
        assert_eq!(check_text(&col(ColumnType::Category), "a"), Ok(Value::Text("a".into())));
    }

    #[test]
    fn rejects_bad_text_with_readable_reasons() {
        let e = check_text(&col(ColumnType::Float), "abc").expect_err("not a number");
        assert_eq!(e[0].message, "c: \"abc\" is not a number");
        assert_eq!(rules(check_text(&col(ColumnType::Float), "NaN")), ["type"]);
        assert_eq!(rules(check_text(&col(ColumnType::Float), "inf")), ["type"]);
        assert_eq!(rules(check_text(&col(ColumnType::Int), "1.5")), ["type"]);
        assert_eq!(rules(check_text(&col(ColumnType::Int), "4.0")), ["type"], "whole floats only when asked");
        let pandas =
            CsvFormat { null_values: vec!["NA".into(), "NaN".into()], whole_floats: true, ..CsvFormat::default() };
        let mut nullable = col(ColumnType::Int);
        nullable.nullable = true;
        assert_eq!(check_field(&nullable, " 4.0 ", &pandas), Ok(Value::Int(4)));
        assert_eq!(check_field(&nullable, "-2.", &pandas), Ok(Value::Int(-2)));
        assert_eq!(check_field(&nullable, "1e3", &pandas), Ok(Value::Int(1000)));
        assert_eq!(check_field(&nullable, "NA", &pandas), Ok(Value::Null));
        assert_eq!(check_field(&nullable, "NaN", &pandas), Ok(Value::Null));
        assert_eq!(rules(check_field(&nullable, "4.5", &pandas)), ["type"]);
        assert_eq!(rules(check_field(&nullable, "1e300", &pandas)), ["type"], "beyond what an i64 keeps exactly");
        assert_eq!(rules(check_field(&nullable, "na", &pandas)), ["type"], "null values match case and all");
        assert_eq!(rules(check_field(&col(ColumnType::Int), "NA", &pandas)), ["nullable"]);
        assert_eq!(rules(check_text(&col(ColumnType::Float), "")), ["nullable"]);
        assert_eq!(rules(check_text(&col(ColumnType::Timestamp), "yesterday")), ["type"]);
    }

    proptest::proptest! {
        /// The plain-decimal fast path reads every text exactly as the standard parser does.
        #[test]
        fn decimals_read_as_the_standard_parser_reads_them(
            sign in "[-+]?",
            whole in "[0-9]{0,8}",
            point in proptest::bool::ANY,
            fraction in "[0-9]{0,8}",
        ) {
            // Up to 17 characters after the sign: the texts the fast path is for. Longer ones
            // are left to the standard parser (the test below).
            let text = if point { format!("{sign}{whole}.{fraction}") } else { format!("{sign}{whole}") };
            if let Some(fast) = decimal(&text) {
                let standard: f64 = text.parse().expect("a decimal the fast path reads is a number");
                proptest::prop_assert_eq!(fast.to_bits(), standard.to_bits(), "{}", text);
            }
        }
    }

    #[test]
    fn the_decimal_fast_path_leaves_other_forms_to_the_standard_parser() {
        for text in
            ["", "-", ".", "1.", ".5", "1e3", "1.2.3", "inf", "NaN", " 1", "12345678901234567890", "9007199254740993"]
        {
            assert_eq!(decimal(text), None, "{text:?}");
        }
        assert_eq!(decimal("-0"), Some(-0.0));
        assert_eq!(decimal("0.1"), Some(0.1));
        assert_eq!(decimal("+7.25"), Some(7.25));
        assert_eq!(decimal("1234.5678"), Some(1234.5678));
        // The standard parser still reads the forms the fast path leaves.
        assert_eq!(check_text(&col(ColumnType::Float), "1e3"), Ok(Value::Float(1000.0)));
        assert_eq!(check_text(&col(ColumnType::Float), ".5"), Ok(Value::Float(0.5)));
    }

    #[test]
    fn reports_every_broken_rule() {
        let mut c = col(ColumnType::Float);
        c.min = Some(10.0);
        c.max = Some(5.0); // Contradictory on purpose: both rules must be reported.
        assert_eq!(rules(check_text(&c, "7")), ["min", "max"]);
        let mut c = col(ColumnType::Category);
        c.allowed = Some(vec!["a".into(), "b".into()]);
        let e = check_text(&c, "z").expect_err("not allowed");
        assert_eq!(e[0].message, "c: \"z\" is not one of a, b");
    }

    #[test]
    fn checks_json_types() {
        use serde_json::json;
        assert_eq!(check_json(&col(ColumnType::Float), &json!(2)), Ok(Value::Float(2.0)));
        assert_eq!(check_json(&col(ColumnType::Int), &json!(2.0)), Ok(Value::Int(2)));
        let e = check_json(&col(ColumnType::Float), &json!("2")).expect_err("string");
        assert_eq!(e[0].message, "c: expected a number, got a string");
        assert_eq!(rules(check_json(&col(ColumnType::Float), &json!(null))), ["nullable"]);
        let mut nullable = col(ColumnType::Float);
        nullable.nullable = true;
        assert_eq!(check_json(&nullable, &json!(null)), Ok(Value::Null));
    }

    #[test]
    fn every_reason_is_cut_to_its_bound() {
        let long = "é".repeat(1 << 20);
        for reason in [Reason::row("batch", long.clone()), Reason::column(&long, "type", format!("x {long}"))] {
            assert_eq!(reason.message.chars().count(), REASON_CHARS);
            assert!(reason.message.ends_with('…'));
            assert!(reason.column.as_deref().is_none_or(|c| c.chars().count() < 100));
        }
        assert_eq!(bounded("short".into()), "short");
        let exactly: String = "a".repeat(REASON_CHARS);
        assert_eq!(bounded(exactly.clone()), exactly);
    }
}
