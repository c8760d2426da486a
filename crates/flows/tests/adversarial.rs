//! Adversarial batches through the ingest pipeline: for each, no panic, every row curated
//! or quarantined (rows read = curated + quarantined), and reasons a person can act on.

use std::io::Write;

use mlops_contract::Contract;
use mlops_flows::ingest::{BatchFiles, QuarantineRecord, Source, ingest_bytes};

fn example(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/penguins").join(file)
}

fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).expect("timestamp").to_utc()
}

const HEADER: &str = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year";
const ROW: &str = "Adelie,Torgersen,39.1,18.7,181,3750,male,2007";

fn contract() -> Contract {
    Contract::load(&example("contract.yaml")).expect("penguins contract")
}

fn run(name: &str, bytes: Vec<u8>) -> BatchFiles {
    let c = contract();
    let baseline = mlops_drift::Profile::baseline(&c, &[]);
    let key = format!("raw/penguins/{name}");
    let source = Source { key: &key, etag: Some("etag"), dt: at("2026-05-01T00:00:00Z").date_naive() };
    let files = ingest_bytes(&c, &baseline, &source, None, &bytes).expect("outputs in memory");
    let n = files.manifest.counts;
    assert_eq!(n.rows_read, n.curated + n.quarantined, "{name}: every row is accounted for");
    files
}

/// The quarantine records of a run.
fn quarantined(files: &BatchFiles) -> Vec<QuarantineRecord> {
    let (_, bytes, _) = files.objects.iter().find(|(k, _, _)| k.starts_with("quarantine/")).expect("quarantine object");
    String::from_utf8_lossy(bytes).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn counts(files: &BatchFiles) -> (u64, u64, u64) {
    let c = files.manifest.counts;
    (c.rows_read, c.curated, c.quarantined)
}

fn csv(lines: &[&str]) -> Vec<u8> {
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

/// Asserts the run's quarantine holds exactly these (line, first reason) pairs.
fn assert_reasons(files: &BatchFiles, expected: &[(u64, &str)]) {
    let got: Vec<(u64, String)> =
        quarantined(files).iter().map(|r| (r.line.unwrap_or(0), r.reasons[0].message.clone())).collect();
    let want: Vec<(u64, String)> = expected.iter().map(|(l, m)| (*l, m.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn ragged_rows() {
    let f = run("ragged.csv", csv(&[HEADER, ROW, "Adelie,Torgersen,39.1", &format!("{ROW},extra")]));
    assert_eq!(counts(&f), (3, 1, 2));
    assert_reasons(
        &f,
        &[(3, "the row has 3 fields but the header has 8"), (4, "the row has 9 fields but the header has 8")],
    );
}

#[test]
fn invalid_utf8_in_a_field() {
    let mut bytes = csv(&[HEADER, ROW]);
    bytes.extend_from_slice(b"Adelie,Torg\xffersen,39.1,18.7,181,3750,male,2007\n");
    let f = run("utf8.csv", bytes);
    assert_eq!(counts(&f), (2, 1, 1));
    assert_reasons(&f, &[(3, "island: the value is not valid UTF-8")]);
}

#[test]
fn a_ten_megabyte_field_is_quarantined_with_bounded_text() {
    let huge = "9".repeat(10 * 1024 * 1024);
    let f = run("huge.csv", csv(&[HEADER, &format!("Adelie,{huge},39.1,18.7,181,3750,male,2007"), ROW]));
    assert_eq!(counts(&f), (2, 1, 1));
    let records = quarantined(&f);
    assert!(records[0].raw.as_ref().expect("raw").len() <= mlops_formats::rows::RAW_TEXT_LIMIT);
    let message = &records[0].reasons[0].message;
    assert!(message.starts_with("island: \"9999999999"), "{message}");
    assert!(message.ends_with("(10485760 bytes) is not one of Biscoe, Dream, Torgersen"), "{message}");
}

#[test]
fn nan_inf_empty_and_locale_numbers() {
    let f = run(
        "numbers.csv",
        csv(&[
            HEADER,
            "Adelie,Torgersen,NaN,18.7,181,3750,male,2007",
            "Adelie,Torgersen,39.1,inf,181,3750,male,2007",
            "Adelie,Torgersen,,,,,,2007",
            "Adelie,Torgersen,\"39,1\",18.7,181,3750,male,2007",
            "Adelie,,39.1,18.7,181,3750,male,",
        ]),
    );
    assert_eq!(counts(&f), (5, 1, 4));
    assert_reasons(
        &f,
        &[
            (2, "bill_length_mm: \"NaN\" is not a finite number"),
            (3, "bill_depth_mm: \"inf\" is not a finite number"),
            (5, "bill_length_mm: \"39,1\" is not a number"),
            (6, "island: a value is required"),
        ],
    );
    // Every broken rule, not only the first.
    let last = &quarantined(&f)[3];
    let rules: Vec<&str> = last.reasons.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(rules, ["island: a value is required", "year: a value is required"]);
}

#[test]
fn whitespace_padding_is_trimmed() {
    let f = run("padded.csv", csv(&[HEADER, " Adelie , Torgersen , 39.1 ,18.7, 181,3750,male ,2007"]));
    assert_eq!(counts(&f), (1, 1, 0));
}

#[test]
fn duplicated_missing_extra_and_reordered_columns() {
    let dup = run("dup.csv", csv(&[&format!("{HEADER},island"), &format!("{ROW},Dream")]));
    assert_eq!(counts(&dup), (1, 0, 1));
    assert_eq!(quarantined(&dup)[0].reasons[0].message, "the header names column \"island\" twice");

    let missing = run("missing.csv", csv(&["species,island,bill_length_mm", "Adelie,Dream,39.1"]));
    assert_eq!(counts(&missing), (1, 0, 1));
    assert_eq!(
        quarantined(&missing)[0].reasons[0].message,
        "the header lacks column \"bill_depth_mm\" required by the contract"
    );

    let extra = run("extra.csv", csv(&[&format!("{HEADER},comment"), &format!("{ROW},looks fine")]));
    assert_eq!(counts(&extra), (1, 1, 0));

    let reordered = run(
        "reordered.csv",
        csv(&[
            "year,sex,body_mass_g,flipper_length_mm,bill_depth_mm,bill_length_mm,island,species",
            "2007,male,3750,181,18.7,39.1,Torgersen,Adelie",
        ]),
    );
    assert_eq!(counts(&reordered), (1, 1, 0));
    let (_, curated, _) = reordered.objects.iter().find(|(k, _, _)| k.starts_with("curated/")).expect("curated");
    let rows = mlops_formats::curated::read_rows(curated.clone()).expect("parquet");
    assert_eq!(
        rows,
        [
            "{species: \"Adelie\", island: \"Torgersen\", bill_length_mm: 39.1, bill_depth_mm: 18.7, flipper_length_mm: 181.0, body_mass_g: 3750.0, sex: \"male\", year: 2007}"
        ]
    );
}

#[test]
fn empty_object_header_only_and_no_trailing_newline() {
    let empty = run("empty.csv", Vec::new());
    assert_eq!(counts(&empty), (0, 0, 0));
    assert_eq!(empty.manifest.batch_error.as_deref(), Some("the file is empty: no header line"));
    let header_only = run("header.csv", csv(&[HEADER]));
    assert_eq!(counts(&header_only), (0, 0, 0));
    assert_eq!(header_only.manifest.batch_error, None);
    let no_newline = run("eof.csv", format!("{HEADER}\n{ROW}\n{ROW}").into_bytes());
    assert_eq!(counts(&no_newline), (2, 2, 0));
}

#[test]
fn bom_and_crlf() {
    let f = run(
        "windows.csv",
        format!("\u{feff}{HEADER}\r\n{ROW}\r\nAdelie,Torgersen,x,18.7,181,3750,male,2007\r\n").into_bytes(),
    );
    assert_eq!(counts(&f), (2, 1, 1));
    let records = quarantined(&f);
    assert_eq!(records[0].line, Some(3));
    assert_eq!(records[0].raw.as_deref(), Some("Adelie,Torgersen,x,18.7,181,3750,male,2007"));
}

#[test]
fn json_lines_with_wrong_types_nested_values_blank_lines_and_a_truncated_tail() {
    let good = r#"{"species":"Adelie","island":"Dream","bill_length_mm":39.1,"bill_depth_mm":18.7,"flipper_length_mm":181,"body_mass_g":3750,"sex":"male","year":2007}"#;
    let lines = [
        good,
        "",
        r#"{"species":"Adelie","island":"Dream","bill_length_mm":"39.1","year":2007}"#,
        r#"{"species":"Adelie","island":{"name":"Dream"},"year":2007}"#,
        "[1, 2, 3]",
        "   ",
        r#"{"species":"Adelie","island":"Dream","bill_le"#,
    ];
    let f = run("batch.jsonl", lines.join("\n").into_bytes());
    assert_eq!(counts(&f), (5, 1, 4));
    let records = quarantined(&f);
    let got: Vec<(u64, &str)> = records.iter().map(|r| (r.line.unwrap_or(0), r.reasons[0].message.as_str())).collect();
    assert_eq!(got[0], (3, "bill_length_mm: expected a number, got a string"));
    assert_eq!(got[1], (4, "island: expected a string, got an object"));
    assert_eq!(got[2], (5, "the line is JSON but not an object: an array"));
    assert_eq!(got[3].0, 7);
    assert!(got[3].1.starts_with("the line is not valid JSON: EOF while parsing"), "{}", got[3].1);
}

#[test]
fn gzip_batches_and_corrupt_gzip() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&csv(&[HEADER, ROW, ROW])).expect("compress");
    let f = run("batch.csv.gz", encoder.finish().expect("gzip"));
    assert_eq!(counts(&f), (2, 2, 0));
    assert!(f.manifest.compressed);

    let corrupt = run("broken.csv.gz", b"\x1f\x8b\x08\x00not really gzip".to_vec());
    assert_eq!(counts(&corrupt), (0, 0, 0));
    let reason = corrupt.manifest.batch_error.clone().expect("batch error");
    assert!(reason.starts_with("the object is not valid gzip"), "{reason}");
    assert_eq!(quarantined(&corrupt)[0].reasons[0].message, reason);
}

#[test]
fn delimiter_and_headerless_files_follow_the_contract() {
    let mut c = contract();
    c.csv.delimiter = ';';
    c.csv.header = false;
    let baseline = mlops_drift::Profile::baseline(&c, &[]);
    let source = Source { key: "raw/penguins/semi.csv", etag: Some("e"), dt: at("2026-05-01T00:00:00Z").date_naive() };
    let bytes =
        b"Adelie;Torgersen;39,1;18.7;181;3750;male;2007\nAdelie;Torgersen;39.1;18.7;181;3750;male;2007\n".to_vec();
    let f = ingest_bytes(&c, &baseline, &source, None, &bytes).expect("outputs in memory");
    assert_eq!(counts(&f), (2, 1, 1));
    assert_reasons(&f, &[(1, "bill_length_mm: \"39,1\" is not a number")]);
}

#[test]
fn json_lines_values_are_read_without_building_them() {
    let fields = r#""species":"Adelie","island":"Dream","bill_depth_mm":18.7,"flipper_length_mm":181,"body_mass_g":3750,"sex":"male","year":2007"#;
    let unknown: Vec<String> = (0..100_000).map(|i| format!("\"u{i}\":[{i}]")).collect();
    let nested = vec!["[0]"; 100_000].join(",");
    let lines = [
        // A hundred thousand unknown keys are skipped: the row is valid.
        format!("{{{fields},\"bill_length_mm\":39.1,{}}}", unknown.join(",")),
        // A contract field holding a large array is rejected by its kind.
        format!("{{{fields},\"bill_length_mm\":[{nested}]}}"),
        // Escapes in a key are read as the name they spell; the last of a repeated key wins.
        format!("{{{fields},\"bill_length_mm\":\"x\",\"bill_\\u006cength_mm\":40.5}}"),
    ];
    let f = run("wide.jsonl", lines.join("\n").into_bytes());
    assert_eq!(counts(&f), (3, 2, 1));
    assert_reasons(&f, &[(2, "bill_length_mm: expected a number, got an array")]);
}

#[test]
fn reasons_and_quoted_values_are_bounded() {
    let long = "x".repeat(1 << 20);
    let f = run(
        "long.csv",
        csv(&[
            HEADER,
            &format!("Adelie,{long},39.1,18.7,181,3750,male,2007"),
            &format!("{long},Dream,39.1,18.7,181,3750,male,2007"),
        ]),
    );
    assert_eq!(counts(&f), (2, 0, 2));
    for record in quarantined(&f) {
        for reason in &record.reasons {
            assert!(reason.message.chars().count() < 200, "{}", &reason.message[..200.min(reason.message.len())]);
        }
        assert!(record.reasons[0].message.contains("(1048576 bytes)"), "{}", record.reasons[0].message);
        assert!(record.raw.as_deref().is_some_and(|r| r.len() <= 4096));
    }
    // A header naming a missing column quotes the contract's name, and a batch reason is cut
    // like any other.
    let f = run("dup.csv", csv(&[&format!("{HEADER},{long},{long}"), ROW]));
    let reason = f.manifest.batch_error.clone().expect("a batch error");
    assert!(reason.chars().count() < 200 && reason.ends_with("twice"), "{reason}");
}
