//! Reading one JSON object as a row of a contract's columns, without building the object.
//!
//! A JSON Lines row or a prediction instance may hold millions of keys the contract does not
//! name, or arrays nested in a field. Parsed into a `serde_json::Value` such an object takes
//! tens of times its size in memory. Here the object is walked once: the fields the contract
//! names are kept (an array or an object only as its kind, which validation rejects anyway),
//! the other keys are counted and the first few kept by name, cut short. Memory per row is
//! then bounded by the columns, not by the object.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::contract::Column;

/// Unknown keys kept by name per object; the others are only counted.
pub const UNKNOWN_KEYS_KEPT: usize = 20;

/// Unknown key names are kept cut to this many characters.
pub const KEY_CHARS: usize = 64;

/// A key as messages quote it: cut to [`KEY_CHARS`] characters, with its size when cut.
pub fn shown_key(key: &str) -> String {
    if key.chars().count() <= KEY_CHARS {
        key.to_string()
    } else {
        let head: String = key.chars().take(KEY_CHARS).collect();
        format!("{head}…({} bytes)", key.len())
    }
}

/// The fields of one JSON object that a list of columns names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonRow {
    /// Per column, in the order the columns were given: its value, or `None` when the object
    /// has no such key. Arrays and objects are kept empty: only their kind matters.
    pub values: Vec<Option<serde_json::Value>>,
    /// The first [`UNKNOWN_KEYS_KEPT`] keys that name no column, cut by [`shown_key`].
    pub unknown: Vec<String>,
    /// How many keys named no column, the kept ones included.
    pub unknown_count: usize,
}

/// What a JSON document turned out to be, when it is not an object: `"an array"`, …
pub type JsonKind = &'static str;

/// Column positions by name, built once for many rows.
#[derive(Debug, Clone)]
pub struct RowReader<'c> {
    /// Per name, the position of the column it fills, or `None` for a name that is known
    /// but not kept.
    positions: Positions<'c>,
    width: usize,
}

/// Up to this many names are looked up by comparing them one by one, which is faster than
/// hashing each key of each object.
const FEW_NAMES: usize = 24;

#[derive(Debug, Clone)]
enum Positions<'c> {
    Few(Vec<(&'c str, Option<usize>)>),
    Many(HashMap<&'c str, Option<usize>>),
}

impl Positions<'_> {
    /// The position `key` fills, and where it stands among the names. Objects tend to give
    /// their keys in the same order one after the other, so the name after the previous
    /// key's, `next`, is tried first.
    fn get(&self, key: &str, next: usize) -> Option<(Option<usize>, usize)> {
        match self {
            Positions::Few(names) => match names.get(next) {
                Some((name, i)) if *name == key => Some((*i, next)),
                _ => names.iter().position(|(name, _)| *name == key).map(|at| (names[at].1, at)),
            },
            Positions::Many(names) => names.get(key).map(|i| (*i, 0)),
        }
    }
}

impl<'c> RowReader<'c> {
    /// A reader that keeps `columns`; every other key is unknown.
    pub fn new(columns: impl IntoIterator<Item = &'c Column>) -> RowReader<'c> {
        RowReader::with_known(columns, [])
    }

    /// A reader that keeps `columns` and skips the keys named in `known` without counting
    /// them as unknown (a contract's columns that are not a model's features, say).
    pub fn with_known(
        columns: impl IntoIterator<Item = &'c Column>,
        known: impl IntoIterator<Item = &'c str>,
    ) -> RowReader<'c> {
        let columns: Vec<&str> = columns.into_iter().map(|c| c.name.as_str()).collect();
        let known: Vec<&str> = known.into_iter().collect();
        let width = columns.len();
        // Known names often repeat the kept columns (a contract's columns beside its features):
        // few enough are deduplicated one by one.
        let positions = if columns.len() + known.len() <= 2 * FEW_NAMES {
            // The kept columns first, in their order, then the other known names; a name
            // given twice fills the position it was last given.
            let mut names: Vec<(&str, Option<usize>)> = Vec::with_capacity(columns.len() + known.len());
            for (i, &name) in columns.iter().enumerate() {
                match names.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = Some(i),
                    None => names.push((name, Some(i))),
                }
            }
            for name in known {
                if !names.iter().any(|(n, _)| *n == name) {
                    names.push((name, None));
                }
            }
            if names.len() <= FEW_NAMES { Positions::Few(names) } else { Positions::Many(names.into_iter().collect()) }
        } else {
            let mut positions: HashMap<&str, Option<usize>> = known.into_iter().map(|name| (name, None)).collect();
            for (i, name) in columns.into_iter().enumerate() {
                positions.insert(name, Some(i));
            }
            Positions::Many(positions)
        };
        RowReader { positions, width }
    }

    /// Parses one JSON text holding an object. `Ok(Err(kind))` when it is valid JSON but not
    /// an object.
    pub fn parse(&self, text: &[u8]) -> Result<Result<JsonRow, JsonKind>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let row = self.seed().deserialize(&mut de)?;
        de.end()?;
        Ok(row)
    }

    /// A seed that reads one object (or reports the kind of what it found instead), for use
    /// inside a larger document.
    pub fn seed(&self) -> RowSeed<'_, 'c> {
        RowSeed { reader: self }
    }
}

/// Reads one JSON value as a [`JsonRow`] when it is an object, or as its kind otherwise.
#[derive(Debug, Clone, Copy)]
pub struct RowSeed<'r, 'c> {
    reader: &'r RowReader<'c>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = Result<JsonRow, JsonKind>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Drains what a visitor was handed and answers with its kind.
macro_rules! kind {
    ($name:ident, $t:ty, $kind:expr) => {
        fn $name<E: de::Error>(self, _: $t) -> Result<Self::Value, E> {
            Ok(Err($kind))
        }
    };
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = Result<JsonRow, JsonKind>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    kind!(visit_bool, bool, "a boolean");
    kind!(visit_i64, i64, "a number");
    kind!(visit_u64, u64, "a number");
    kind!(visit_f64, f64, "a number");
    kind!(visit_str, &str, "a string");

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let reader = self.reader;
        let mut row = JsonRow { values: vec![None; reader.width], ..JsonRow::default() };
        let mut next = 0;
        while let Some(key) =
            map.next_key_seed(KeySeed { reader, keep: row.unknown.len() < UNKNOWN_KEYS_KEPT, next: &mut next })?
        {
            match key {
                Key::Column(i) => row.values[i] = Some(map.next_value_seed(FieldSeed)?),
                Key::Known => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Unknown(name) => {
                    row.unknown_count += 1;
                    row.unknown.extend(name);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(row))
    }
}

enum Key {
    Column(usize),
    /// A key that names a known field that is not kept.
    Known,
    /// A key that names no column; its shown name while names are still being kept.
    Unknown(Option<String>),
}

struct KeySeed<'r, 'c, 'n> {
    reader: &'r RowReader<'c>,
    /// Whether an unknown key's name is still kept.
    keep: bool,
    /// Where among the names the key is looked for first: after the previous key's.
    next: &'n mut usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_, '_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_, '_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        let found = self.reader.positions.get(key, *self.next);
        if let Some((_, at)) = found {
            *self.next = at + 1;
        }
        Ok(match found {
            Some((Some(i), _)) => Key::Column(i),
            Some((None, _)) => Key::Known,
            // Cut here, so that a megabyte-long key is never copied whole.
            None => Key::Unknown(self.keep.then(|| shown_key(key))),
        })
    }
}

/// A field's value: scalars whole, arrays and objects skipped and kept empty.
struct FieldSeed;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = serde_json::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<serde_json::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<serde_json::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<serde_json::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E: de::Error>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<serde_json::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(serde_json::Value::Array(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<serde_json::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(serde_json::Value::Object(serde_json::Map::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contract;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\ncolumns:\n  - {name: x, type: float}\n  - {name: k, type: category}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    #[test]
    fn keeps_the_named_fields_and_counts_the_others() {
        let contract = contract();
        let reader = RowReader::new(&contract.columns);
        let long = "u".repeat(1000);
        let text = format!(r#"{{"k": "a", "z": [1, {{"q": 2}}], "x": 1.5, "{long}": 1, "k": "b", "x\u00e9": null}}"#);
        let row = reader.parse(text.as_bytes()).expect("valid JSON").expect("an object");
        assert_eq!(row.values, [Some(serde_json::json!(1.5)), Some(serde_json::json!("b"))]);
        assert_eq!(row.unknown_count, 3);
        assert_eq!(row.unknown[0], "z");
        assert!(row.unknown[1].ends_with("…(1000 bytes)") && row.unknown[1].chars().count() < 80);
        assert_eq!(row.unknown[2], "xé");
    }

    #[test]
    fn arrays_and_objects_in_fields_keep_their_kind_and_other_documents_are_named() {
        let contract = contract();
        let reader = RowReader::new(&contract.columns);
        let row = reader.parse(br#"{"x": [1, 2, 3], "k": {"a": 1}}"#).expect("valid").expect("object");
        assert_eq!(row.values, [Some(serde_json::json!([])), Some(serde_json::json!({}))]);
        for (text, kind) in [("[1]", "an array"), ("\"s\"", "a string"), ("2", "a number"), ("null", "null")] {
            assert_eq!(reader.parse(text.as_bytes()).expect("valid"), Err(kind), "{text}");
        }
        assert!(reader.parse(b"{\"x\": 1} trailing").is_err());
        assert!(reader.parse(b"{\"x\": ").is_err());
    }

    #[test]
    fn only_the_first_unknown_keys_are_kept() {
        let contract = contract();
        let reader = RowReader::new(&contract.columns);
        let keys: Vec<String> = (0..10_000).map(|i| format!("\"u{i}\": {i}")).collect();
        let row = reader.parse(format!("{{{}}}", keys.join(",")).as_bytes()).expect("valid").expect("object");
        assert_eq!(row.unknown_count, 10_000);
        assert_eq!(row.unknown.len(), UNKNOWN_KEYS_KEPT);
        assert_eq!(row.values, [None, None]);
    }

    #[test]
    fn keys_in_any_order_fill_the_same_positions_with_few_names_or_many() {
        // Objects give their keys in the contract's order, in another order, or mixed with
        // known and unknown names; with few names (looked up one by one, the next name first)
        // or many (hashed), every key fills the position of its column.
        for columns in [3, 20, 40, 60] {
            let yaml: String = (0..columns).map(|i| format!("  - {{name: c{i}, type: float}}\n")).collect();
            let contract = Contract::from_yaml(&format!("dataset: d\ncolumns:\n{yaml}"), "t.yaml").expect("contract");
            let reader = RowReader::with_known(&contract.columns, ["c0", "known"]);
            let forward: Vec<String> = (0..columns).map(|i| format!("\"c{i}\": {i}")).collect();
            let mut backward = forward.clone();
            backward.reverse();
            let mut mixed = vec!["\"known\": 1".to_string(), "\"other\": 2".to_string()];
            mixed.extend(forward.iter().step_by(2).cloned());
            mixed.extend(forward.iter().skip(1).step_by(2).cloned());
            for keys in [&forward, &backward, &mixed] {
                let text = format!("{{{}}}", keys.join(", "));
                let row = reader.parse(text.as_bytes()).expect("valid").expect("object");
                let expected: Vec<Option<serde_json::Value>> =
                    (0..columns).map(|i| Some(serde_json::json!(i))).collect();
                assert_eq!(row.values, expected, "{columns} columns: {text}");
                let unknown = usize::from(keys.iter().any(|k| k.contains("other")));
                assert_eq!(row.unknown_count, unknown, "{columns} columns: {text}");
            }
        }
    }
}
