//! Records pulled from a byte stream with bounded memory: CSV records (RFC 4180, through
//! `csv-core`) and text lines (JSON Lines).
//!
//! Each record carries the line where it starts and the first bytes of its source text. A
//! record longer than the row limit is read to its end but its content is dropped; it comes
//! back flagged, so that it can be quarantined rather than held in memory.

use std::io::{self, BufRead};

/// One record: its fields (CSV) or its text (lines), and where it came from.
#[derive(Debug, Default)]
pub struct Record {
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Bytes of source text the record spans, its terminator included.
    pub len: u64,
    /// The record was longer than the row limit; its content was dropped.
    pub oversized: bool,
    /// Quote characters in the record's source text: an odd count means a quote was opened
    /// and never closed (the record then runs to the end of the input).
    pub quotes: u64,
    /// The line the record ends on.
    pub last_line: u64,
    /// Nothing follows the record in the input.
    pub at_end: bool,
    /// Field content; only the first `used` bytes belong to this record (the buffer keeps its
    /// length between records so it is not cleared for each one).
    fields: Vec<u8>,
    used: usize,
    /// Field end offsets into `fields`; only the first `width` belong to this record.
    ends: Vec<usize>,
    width: usize,
    raw: Vec<u8>,
}

impl Record {
    /// The number of fields (CSV) or 1 (a line).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Field `i`, unescaped (CSV), or the whole line.
    pub fn field(&self, i: usize) -> Option<&[u8]> {
        self.fields[..self.used].get(self.span(i)?)
    }

    /// Where field `i` lies in [`content`](Self::content).
    pub fn span(&self, i: usize) -> Option<std::ops::Range<usize>> {
        let ends = &self.ends[..self.width];
        let end = *ends.get(i)?;
        let start = if i == 0 { 0 } else { ends[i - 1] };
        Some(start..end)
    }

    /// Every field's content, one after another.
    pub fn content(&self) -> &[u8] {
        &self.fields[..self.used]
    }

    /// The first bytes of the record's source text, without its line terminator.
    pub fn raw(&self) -> &[u8] {
        let raw = self.raw.strip_suffix(b"\n").unwrap_or(&self.raw);
        raw.strip_suffix(b"\r").unwrap_or(raw)
    }

    fn clear(&mut self) {
        self.len = 0;
        self.oversized = false;
        self.quotes = 0;
        self.at_end = false;
        self.used = 0;
        self.width = 0;
        self.raw.clear();
    }
}

/// Limits on what one record may hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Longest record kept, in bytes of field content; longer ones come back `oversized`.
    pub max_row_bytes: usize,
    /// Source text kept per record for quarantine records.
    pub raw_bytes: usize,
}

/// Tracks the line a record starts on and keeps the first bytes of its text.
#[derive(Debug)]
struct Spans {
    /// The line of the next unread byte.
    line: u64,
    /// Leading line terminators belong to blank lines, not to the record.
    started: bool,
    /// Whether the last byte seen was a CR, so that a CRLF split across reads counts once.
    after_cr: bool,
}

impl Spans {
    /// Counts the line ends in `bytes`: LF, CRLF and a lone CR each end one line.
    fn count_lines(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\r' || (b == b'\n' && !self.after_cr) {
                self.line += 1;
            }
            self.after_cr = b == b'\r';
        }
    }

    fn consume(&mut self, record: &mut Record, mut bytes: &[u8], raw_limit: usize) {
        record.len += bytes.len() as u64;
        if !self.started {
            let lead = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len());
            self.count_lines(&bytes[..lead]);
            bytes = &bytes[lead..];
            if bytes.is_empty() {
                return;
            }
            self.started = true;
            record.line = self.line;
        }
        record.quotes += bytes.iter().filter(|b| **b == b'"').count() as u64;
        if self.after_cr || bytes.contains(&b'\r') {
            // CR or CRLF line ends: byte by byte, so that a CRLF split across reads counts once.
            for &b in bytes {
                match b {
                    b'\r' => self.line += 1,
                    b'\n' if !self.after_cr => self.line += 1,
                    b'\n' => {}
                    _ => record.last_line = self.line,
                }
                self.after_cr = b == b'\r';
            }
        } else {
            // LF only, the common case: counted in bulk on the hot path.
            let trailing = bytes.iter().rev().take_while(|b| **b == b'\n').count();
            let body = &bytes[..bytes.len() - trailing];
            if !body.is_empty() {
                self.line += body.iter().filter(|b| **b == b'\n').count() as u64;
                record.last_line = self.line;
            }
            self.line += trailing as u64;
        }
        let room = raw_limit.saturating_sub(record.raw.len());
        record.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Where a stream of records stands: the line of its next byte, and whether the byte before
/// was a CR (so that an LF right after it ends no second line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub after_cr: bool,
}

impl Position {
    pub const START: Position = Position { line: 1, after_cr: false };

    /// The position after `bytes`: LF, CRLF and a lone CR each end one line.
    pub fn after(self, bytes: &[u8]) -> Position {
        let mut spans = Spans { line: self.line, started: true, after_cr: self.after_cr };
        spans.count_lines(bytes);
        Position { line: spans.line, after_cr: spans.after_cr }
    }
}

/// The end of the last whole CSV record in `bytes` (which start at a record's start), read
/// as `csv-core` reads them, quotes included; `None` when no record ends in them.
pub fn last_record_end(delimiter: u8, bytes: &[u8]) -> Option<usize> {
    use csv_core::ReadRecordResult as R;
    let mut parser = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let (mut fields, mut ends) = (vec![0u8; 64 << 10], vec![0usize; 1024]);
    let (mut pos, mut last) = (0, None);
    // An empty input means the end of the stream to csv-core, so the last bytes are never
    // handed over alone: a record they would end is not known to end.
    while pos < bytes.len() {
        let (result, read, _, _) = parser.read_record(&bytes[pos..], &mut fields, &mut ends);
        pos += read;
        match result {
            R::Record => last = Some(pos),
            R::InputEmpty | R::End => break,
            // The fields are not kept: the same buffers take the rest of the record.
            R::OutputFull | R::OutputEndsFull => {}
        }
    }
    // A CRLF whose LF was not read yet stays with its record.
    last.map(|end| if end < bytes.len() && bytes[end] == b'\n' && bytes[end - 1] == b'\r' { end + 1 } else { end })
}

/// CSV records from a buffered byte stream.
pub struct CsvRecords<R> {
    input: R,
    parser: csv_core::Reader,
    limits: RecordLimits,
    spans: Spans,
    done: bool,
    /// More of the batch follows this input (one chunk of a larger batch).
    more_follows: bool,
}

impl<R> std::fmt::Debug for CsvRecords<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRecords").field("line", &self.spans.line).finish()
    }
}

impl<R: BufRead> CsvRecords<R> {
    pub fn new(input: R, delimiter: u8, limits: RecordLimits) -> CsvRecords<R> {
        CsvRecords::resume(input, delimiter, limits, Position::START, false)
    }

    /// Records from a stream that starts at a record's start at `position` of a batch; with
    /// `more_follows`, its last record is not the batch's last.
    pub fn resume(
        input: R,
        delimiter: u8,
        limits: RecordLimits,
        position: Position,
        more_follows: bool,
    ) -> CsvRecords<R> {
        let parser = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        let spans = Spans { line: position.line, started: false, after_cr: position.after_cr };
        CsvRecords { input, parser, limits, spans, done: false, more_follows }
    }

    /// The stream, at the start of the next record, and where it stands.
    pub fn into_parts(self) -> (R, Position) {
        (self.input, Position { line: self.spans.line, after_cr: self.spans.after_cr })
    }

    /// Reads the next record into `record`; `false` at the end of the input.
    pub fn next_into(&mut self, record: &mut Record) -> io::Result<bool> {
        use csv_core::ReadRecordResult as R;
        record.clear();
        if self.done {
            return Ok(false);
        }
        self.spans.started = false;
        if record.fields.len() < 1024 {
            record.fields.resize(1024, 0);
        }
        if record.ends.len() < 32 {
            record.ends.resize(32, 0);
        }
        let (mut out_len, mut ends_len) = (0usize, 0usize);
        loop {
            let input = self.input.fill_buf()?;
            let (result, read, written, ended) =
                self.parser.read_record(input, &mut record.fields[out_len..], &mut record.ends[ends_len..]);
            self.spans.consume(record, &input[..read], self.limits.raw_bytes);
            self.input.consume(read);
            // Field ends count from the start of the record, across calls.
            out_len += written;
            ends_len += ended;
            match result {
                R::InputEmpty => {}
                R::OutputFull => {
                    if out_len >= self.limits.max_row_bytes {
                        // Keep parsing to the record's end, dropping what it holds.
                        record.oversized = true;
                        out_len = 0;
                        ends_len = 0;
                    } else {
                        let grown = (record.fields.len() * 2).min(self.limits.max_row_bytes.max(1024));
                        record.fields.resize(grown.max(record.fields.len() + 1), 0);
                    }
                }
                R::OutputEndsFull => {
                    // The field offsets count toward the row's bound as well as its bytes: a
                    // line of a hundred million commas is a hundred million fields.
                    let offsets = record.ends.len() * 2 * std::mem::size_of::<usize>();
                    if record.oversized || out_len + offsets > self.limits.max_row_bytes {
                        record.oversized = true;
                        out_len = 0;
                        ends_len = 0;
                    } else {
                        record.ends.resize(record.ends.len() * 2, 0);
                    }
                }
                R::Record => break,
                R::End => {
                    self.done = true;
                    return Ok(false);
                }
            }
        }
        if out_len > self.limits.max_row_bytes {
            record.oversized = true;
        }
        (record.used, record.width) = if record.oversized { (0, 0) } else { (out_len, ends_len) };
        record.at_end = !self.more_follows && self.input.fill_buf()?.is_empty();
        Ok(true)
    }
}

/// Lines of a buffered byte stream, for JSON Lines. Blank lines are records too (the caller
/// skips them), so that line numbers stay right.
#[derive(Debug)]
pub struct Lines<R> {
    input: R,
    limits: RecordLimits,
    line: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R, limits: RecordLimits) -> Lines<R> {
        Lines { input, limits, line: 0 }
    }

    /// Reads the next line into `record` (as its single field); `false` at the end.
    pub fn next_into(&mut self, record: &mut Record) -> io::Result<bool> {
        record.clear();
        let mut any = false;
        loop {
            let input = self.input.fill_buf()?;
            if input.is_empty() {
                break;
            }
            any = true;
            let (chunk, found) = match input.iter().position(|b| *b == b'\n') {
                Some(i) => (&input[..=i], true),
                None => (input, false),
            };
            record.len += chunk.len() as u64;
            let room = self.limits.raw_bytes.saturating_sub(record.raw.len());
            record.raw.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if !record.oversized {
                if record.used + chunk.len() > self.limits.max_row_bytes {
                    record.oversized = true;
                    record.used = 0;
                } else {
                    record.fields.truncate(record.used);
                    record.fields.extend_from_slice(chunk);
                    record.used += chunk.len();
                }
            }
            let n = chunk.len();
            self.input.consume(n);
            if found {
                break;
            }
        }
        if !any {
            return Ok(false);
        }
        self.line += 1;
        record.line = self.line;
        if !record.oversized {
            let text = &record.fields[..record.used];
            let text = text.strip_suffix(b"\n").unwrap_or(text);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if record.ends.is_empty() {
                record.ends.push(0);
            }
            record.ends[0] = text.len();
            record.width = 1;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RecordLimits = RecordLimits { max_row_bytes: 64, raw_bytes: 16 };

    fn csv(text: &[u8], limits: RecordLimits) -> Vec<(u64, Vec<String>, String, bool)> {
        // A one-byte buffer makes every record cross many reads.
        let mut records = CsvRecords::new(std::io::BufReader::with_capacity(1, text), b',', limits);
        let mut record = Record::default();
        let mut out = Vec::new();
        while records.next_into(&mut record).expect("in-memory input") {
            let fields = (0..record.width())
                .map(|i| String::from_utf8_lossy(record.field(i).unwrap_or_default()).into())
                .collect();
            out.push((record.line, fields, String::from_utf8_lossy(record.raw()).into(), record.oversized));
        }
        out
    }

    #[test]
    fn csv_records_keep_lines_raw_text_and_quoted_fields() {
        let got = csv(b"a,b\r\n\r\n\"x\"\"y\",\"multi\nline\"\n1,2", LIMITS);
        assert_eq!(got[0], (1, vec!["a".into(), "b".into()], "a,b".into(), false));
        assert_eq!(got[1], (3, vec!["x\"y".into(), "multi\nline".into()], "\"x\"\"y\",\"multi\nli".into(), false));
        assert_eq!(got[2], (5, vec!["1".into(), "2".into()], "1,2".into(), false));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn oversized_records_are_flagged_and_the_next_one_is_intact() {
        let long = format!("{},x\n1,2\n", "9".repeat(200));
        let got = csv(long.as_bytes(), LIMITS);
        assert_eq!(got.len(), 2);
        assert!(got[0].3, "flagged");
        assert!(got[0].1.is_empty());
        assert_eq!(got[0].2.len(), 16);
        assert_eq!(got[1], (2, vec!["1".into(), "2".into()], "1,2".into(), false));
    }

    #[test]
    fn lines_are_numbered_with_blank_lines_and_bounded() {
        let text = format!("{{}}\r\n\n{}\nlast", "z".repeat(100));
        let mut lines = Lines::new(std::io::BufReader::with_capacity(3, text.as_bytes()), LIMITS);
        let mut record = Record::default();
        let mut got = Vec::new();
        while lines.next_into(&mut record).expect("in-memory input") {
            got.push((record.line, record.field(0).map(|f| f.to_vec()), record.oversized));
        }
        assert_eq!(got[0], (1, Some(b"{}".to_vec()), false));
        assert_eq!(got[1], (2, Some(Vec::new()), false));
        assert_eq!(got[2], (3, None, true));
        assert_eq!(got[3], (4, Some(b"last".to_vec()), false));
    }
}
