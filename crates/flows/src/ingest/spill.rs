//! Rows of dates that have no open curated file, held until the batch ends so that every date
//! gets one file whatever the order of the rows.
//!
//! Rows are encoded into a buffer; when it passes its budget it is sorted by date (stably, so
//! rows keep their order within a date) and appended to one anonymous temporary file as a
//! run. At the end, the runs are read back date by date: for each date, run after run, which
//! gives that date's rows in the order they arrived. Every run is read from the same file by
//! position, so a batch holds one file descriptor however many runs it spills, and the runs'
//! read buffers share one budget: memory is the buffer's budget twice, whatever the batch.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::sync::Arc;

use chrono::{Datelike as _, NaiveDate};
use mlops_contract::validate::Value;

/// Read buffer of a run while the runs are merged, at most (when there are few runs) and at
/// least (when there are so many that the budget shared among them is smaller).
const RUN_READ_BUFFER: usize = 64 << 10;
const MIN_RUN_READ_BUFFER: usize = 4 << 10;

const NULL: u8 = 0;
const FLOAT: u8 = 1;
const INT: u8 = 2;
const FALSE: u8 = 3;
const TRUE: u8 = 4;
const TEXT: u8 = 5;

/// Rows waiting for their date's file.
pub(super) struct Spill {
    budget: usize,
    arena: Vec<u8>,
    /// The buffered rows: date (days from the common era), start and end in `arena`.
    index: Vec<(i32, usize, usize)>,
    /// The file the runs are appended to, created with the first run.
    file: Option<File>,
    /// Each run's start and end in `file`.
    runs: Vec<(u64, u64)>,
    rows: u64,
}

impl Spill {
    pub(super) fn new(budget: usize) -> Spill {
        Spill { budget: budget.max(1), arena: Vec::new(), index: Vec::new(), file: None, runs: Vec::new(), rows: 0 }
    }

    /// Rows spilled so far, in memory or on disk.
    pub(super) fn rows(&self) -> u64 {
        self.rows
    }

    /// Runs written to disk so far.
    pub(super) fn runs(&self) -> usize {
        self.runs.len()
    }

    pub(super) fn push(&mut self, date: NaiveDate, row: &[Value]) -> std::io::Result<()> {
        let start = self.arena.len();
        encode(row, &mut self.arena);
        self.index.push((date.num_days_from_ce(), start, self.arena.len()));
        self.rows += 1;
        if self.arena.len() + self.index.len() * size_of::<(i32, usize, usize)>() > self.budget {
            self.write_run()?;
        }
        Ok(())
    }

    fn write_run(&mut self) -> std::io::Result<()> {
        self.index.sort_by_key(|(date, _, _)| *date);
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile::tempfile()?),
        };
        let start = self.runs.last().map_or(0, |(_, end)| *end);
        let mut out = BufWriter::with_capacity(RUN_READ_BUFFER, &mut *file);
        for (date, from, to) in &self.index {
            out.write_all(&date.to_le_bytes())?;
            out.write_all(&((to - from) as u32).to_le_bytes())?;
            out.write_all(&self.arena[*from..*to])?;
        }
        out.flush()?;
        drop(out);
        let end = file.stream_position()?;
        self.runs.push((start, end));
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    /// The spilled rows, to be read date by date.
    pub(super) fn into_merge(mut self) -> std::io::Result<Merge> {
        self.index.sort_by_key(|(date, _, _)| *date);
        let mut runs = Vec::with_capacity(self.runs.len() + 1);
        if let Some(file) = self.file {
            let file = Arc::new(file);
            let buffer = (self.budget / self.runs.len().max(1)).clamp(MIN_RUN_READ_BUFFER, RUN_READ_BUFFER);
            for (start, end) in self.runs {
                let segment = Segment { file: Arc::clone(&file), at: start, end };
                let mut run = Run::File { reader: BufReader::with_capacity(buffer, segment), head: None };
                run.advance()?;
                runs.push(run);
            }
        }
        if !self.index.is_empty() {
            runs.push(Run::Memory { arena: self.arena, index: self.index, at: 0 });
        }
        Ok(Merge { runs, cursor: 0, date: None })
    }
}

/// One run of the spill file, read by position so that every run shares the file.
struct Segment {
    file: Arc<File>,
    at: u64,
    end: u64,
}

impl Read for Segment {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min((self.end - self.at) as usize);
        if n == 0 {
            return Ok(0);
        }
        let read = read_at(&self.file, &mut buf[..n], self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// One sorted run: a file written when the buffer filled, or the buffer's remainder.
enum Run {
    File { reader: BufReader<Segment>, head: Option<(i32, Vec<u8>)> },
    Memory { arena: Vec<u8>, index: Vec<(i32, usize, usize)>, at: usize },
}

impl Run {
    fn head_date(&self) -> Option<i32> {
        match self {
            Run::File { head, .. } => head.as_ref().map(|(d, _)| *d),
            Run::Memory { index, at, .. } => index.get(*at).map(|(d, _, _)| *d),
        }
    }

    fn head(&self) -> &[u8] {
        match self {
            Run::File { head, .. } => head.as_ref().map_or(&[], |(_, b)| b.as_slice()),
            Run::Memory { arena, index, at } => index.get(*at).map_or(&[], |(_, s, e)| &arena[*s..*e]),
        }
    }

    fn advance(&mut self) -> std::io::Result<()> {
        match self {
            Run::File { reader, head } => {
                let mut date = [0u8; 4];
                match reader.read_exact(&mut date) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        *head = None;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                let mut len = [0u8; 4];
                reader.read_exact(&mut len)?;
                let mut bytes = head.take().map(|(_, b)| b).unwrap_or_default();
                bytes.resize(u32::from_le_bytes(len) as usize, 0);
                reader.read_exact(&mut bytes)?;
                *head = Some((i32::from_le_bytes(date), bytes));
            }
            Run::Memory { at, .. } => *at += 1,
        }
        Ok(())
    }
}

/// The spilled rows being read back, one date at a time.
pub(super) struct Merge {
    runs: Vec<Run>,
    cursor: usize,
    date: Option<i32>,
}

impl Merge {
    /// The earliest date not read yet, whose rows [`Merge::next_row`] gives next.
    pub(super) fn next_date(&mut self) -> Option<NaiveDate> {
        self.cursor = 0;
        self.date = self.runs.iter().filter_map(Run::head_date).min();
        self.date.and_then(NaiveDate::from_num_days_from_ce_opt)
    }

    /// The next row of the current date into `row`; false when that date has no more rows.
    pub(super) fn next_row(&mut self, row: &mut Vec<Value>) -> std::io::Result<bool> {
        let Some(date) = self.date else { return Ok(false) };
        while let Some(run) = self.runs.get_mut(self.cursor) {
            if run.head_date() == Some(date) {
                decode(run.head(), row)?;
                run.advance()?;
                return Ok(true);
            }
            self.cursor += 1;
        }
        Ok(false)
    }
}

fn encode(row: &[Value], out: &mut Vec<u8>) {
    for value in row {
        match value {
            Value::Null => out.push(NULL),
            Value::Float(v) => {
                out.push(FLOAT);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Int(v) => {
                out.push(INT);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Bool(false) => out.push(FALSE),
            Value::Bool(true) => out.push(TRUE),
            Value::Text(t) => {
                out.push(TEXT);
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                out.extend_from_slice(t.as_bytes());
            }
        }
    }
}

fn corrupt(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a spilled row is damaged: {what}"))
}

fn decode(mut bytes: &[u8], row: &mut Vec<Value>) -> std::io::Result<()> {
    fn take<'b>(bytes: &mut &'b [u8], n: usize) -> std::io::Result<&'b [u8]> {
        if bytes.len() < n {
            return Err(corrupt("it ends inside a value"));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn eight(bytes: &mut &[u8]) -> std::io::Result<[u8; 8]> {
        take(bytes, 8)?.try_into().map_err(|_| corrupt("a short number"))
    }
    row.clear();
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        row.push(match tag {
            NULL => Value::Null,
            FLOAT => Value::Float(f64::from_le_bytes(eight(&mut bytes)?)),
            INT => Value::Int(i64::from_le_bytes(eight(&mut bytes)?)),
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            TEXT => {
                let len: [u8; 4] = take(&mut bytes, 4)?.try_into().map_err(|_| corrupt("a short length"))?;
                let text = take(&mut bytes, u32::from_le_bytes(len) as usize)?;
                Value::Text(std::str::from_utf8(text).map_err(|_| corrupt("text that is not UTF-8"))?.into())
            }
            _ => return Err(corrupt("an unknown value tag")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 4, d).expect("date")
    }

    fn all(spill: Spill) -> Vec<(NaiveDate, Vec<Value>)> {
        let mut merge = spill.into_merge().expect("merge");
        let mut out = Vec::new();
        while let Some(date) = merge.next_date() {
            let mut row = Vec::new();
            while merge.next_row(&mut row).expect("row") {
                out.push((date, row.clone()));
            }
        }
        out
    }

    #[test]
    fn rows_come_back_by_date_in_arrival_order_across_runs() {
        for budget in [1, 200, 1 << 20] {
            let mut spill = Spill::new(budget);
            let mut expected = Vec::new();
            for i in 0..500i64 {
                let date = day(1 + (i * 7 % 5) as u32);
                let row = vec![
                    Value::Int(i),
                    Value::Float(i as f64 / 3.0),
                    if i % 3 == 0 { Value::Null } else { Value::Text(format!("é{i}").into()) },
                    Value::Bool(i % 2 == 0),
                ];
                spill.push(date, &row).expect("spill");
                expected.push((date, row));
            }
            let runs = spill.runs();
            assert!(budget > 1 << 19 || runs > 1, "a small budget writes runs ({budget}: {runs})");
            expected.sort_by_key(|(d, _)| *d);
            assert_eq!(all(spill), expected, "budget {budget}");
        }
    }

    #[test]
    fn a_damaged_row_is_an_error() {
        let mut row = Vec::new();
        assert!(decode(&[TEXT, 9, 0, 0, 0, b'a'], &mut row).is_err());
        assert!(decode(&[42], &mut row).is_err());
        assert!(decode(&[FLOAT, 1, 2], &mut row).is_err());
    }
}
