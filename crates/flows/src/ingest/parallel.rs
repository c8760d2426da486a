//! One CSV batch read on several threads.
//!
//! The calling thread reads the stream and cuts it into chunks of about [`CHUNK_BYTES`] that
//! end where a record ends (found as `csv-core` reads records, so quoted line breaks stay
//! inside their record). Workers parse and validate each chunk and profile its valid rows; the
//! calling thread takes the chunks back in order and files their rows, so every output holds
//! its rows in the order of the source. Each worker profiles every chunk it reads into one
//! profile, and the calling thread merges the workers' profiles when the batch ends: what a
//! profile holds does not depend on the order of its rows, so it is the one a single thread
//! computes (up to the KLL sketches' own randomness and the last bits of the moments).
//!
//! Memory: at most `2 × threads + 2` chunks are in flight (one queued, one done and not yet
//! taken, and per worker the one it reads and at most one waiting for its turn), each its
//! source bytes and its rows' values (about six times the bytes); and per worker one profile,
//! whose size is bounded per column whatever the number of rows. A record that does not end
//! within [`MAX_SCAN_BYTES`] ends the parallel reading: the rest of the batch, that record
//! included, is read on the calling thread as a single-threaded ingest reads it, within its
//! bound.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use mlops_contract::Contract;
use mlops_contract::validate::{Reason, Value};
use mlops_drift::profile::{Profile, Profiler};
use mlops_formats::rows::records::{Position, last_record_end};
use mlops_formats::rows::{CsvHeader, ReadError, Row, read_csv_header, read_csv_rows};

use crate::error::Error;

/// Source bytes per chunk.
pub const CHUNK_BYTES: usize = 512 << 10;

/// A chunk grows until a record ends in it, up to this many bytes.
pub const MAX_SCAN_BYTES: usize = 4 * CHUNK_BYTES;

/// What the calling thread does with the rows, in order.
pub(super) trait Sink {
    /// A row whose values were already profiled (valid) or that is quarantined.
    fn take(&mut self, line: u64, raw: &[u8], outcome: Result<&[Value], Vec<Reason>>) -> Result<(), Error>;
    /// The profile of a worker's valid rows, once the batch has been read.
    fn merge_profile(&mut self, profile: &Profile) -> Result<(), Error>;
    /// A row read on the calling thread, not profiled yet.
    fn row(&mut self, row: Row<'_>) -> Result<(), Error>;
}

struct Chunk {
    seq: u64,
    bytes: Vec<u8>,
    position: Position,
    more_follows: bool,
}

/// A row of a chunk: its line, its source text when quarantined, and its outcome: where its
/// values are in the chunk's [`Rows::values`], or why it is quarantined.
struct Parsed {
    line: u64,
    raw: Vec<u8>,
    outcome: Result<std::ops::Range<usize>, Vec<Reason>>,
}

/// The rows of a chunk. The values of its valid rows are kept in one vector, so that the
/// thread that files them frees one allocation per chunk rather than one per row that
/// another thread made.
struct Rows {
    rows: Vec<Parsed>,
    values: Vec<Value>,
}

struct Done {
    seq: u64,
    rows: Result<Rows, std::io::Error>,
}

/// Reads a CSV batch from `input` with `threads` workers and hands every row to `sink`.
pub(super) fn read_csv(
    contract: &Contract,
    baseline: &Profile,
    input: impl BufRead,
    threads: usize,
    sink: &mut dyn Sink,
) -> Result<(), ReadError<Error>> {
    let (header, mut input, position) = read_csv_header::<_, Error>(contract, input)?;
    let threads = threads.max(1);
    let (jobs, queue) = sync_channel::<Chunk>(1);
    let (done_tx, done) = sync_channel::<Done>(1);
    let queue = Arc::new(Mutex::new(queue));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (queue, done_tx, header) = (Arc::clone(&queue), done_tx.clone(), &header);
                scope.spawn(move || work(contract, baseline, header, &queue, &done_tx))
            })
            .collect();
        drop(done_tx);
        let mut order = InOrder { next: 0, sent: 0, waiting: BTreeMap::new(), done: &done, sink };
        let rest = split(contract, &mut input, position, &jobs, &mut order);
        drop(jobs);
        // Every worker's last chunk is taken back, even after an error, so that none is left
        // waiting to hand its chunk on when the scope ends.
        let rest = match rest {
            Ok(rest) => order.finish().map(|()| rest),
            Err(e) => {
                order.abandon();
                Err(e)
            }
        };
        // Every chunk is back, so the workers have ended: their profiles go in now.
        for worker in workers {
            let profile =
                worker.join().map_err(|_| ReadError::Input(std::io::Error::other("an ingest worker panicked")))?;
            if rest.is_ok() {
                order.sink.merge_profile(&profile).map_err(ReadError::Consumer)?;
            }
        }
        match rest {
            Ok(None) => Ok(()),
            // A record too long to find the end of: the rest on this thread, as one piece.
            Ok(Some((pending, position))) => {
                let stream = std::io::BufReader::new(std::io::Cursor::new(pending).chain(input));
                read_csv_rows(contract, &header, stream, position, false, |row| order.sink.row(row))
            }
            Err(e) => Err(e),
        }
    })
}

/// Cuts the stream into chunks and queues them, taking finished chunks back whenever the
/// queue is full. Returns the unread rest when a record runs past [`MAX_SCAN_BYTES`].
fn split(
    contract: &Contract,
    input: &mut impl BufRead,
    mut position: Position,
    jobs: &SyncSender<Chunk>,
    order: &mut InOrder<'_, '_>,
) -> Result<Option<(Vec<u8>, Position)>, ReadError<Error>> {
    let delimiter = contract.csv.delimiter as u8;
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    let mut seq = 0u64;
    let mut want = CHUNK_BYTES;
    loop {
        let mut end_of_input = false;
        while pending.len() < want {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                end_of_input = true;
                break;
            }
            let n = buf.len().min(want - pending.len());
            pending.extend_from_slice(&buf[..n]);
            input.consume(n);
        }
        let cut = if end_of_input { Some(pending.len()) } else { last_record_end(delimiter, &pending) };
        let Some(cut) = cut else {
            if pending.len() >= MAX_SCAN_BYTES {
                return Ok(Some((pending, position)));
            }
            want = pending.len() + CHUNK_BYTES;
            continue;
        };
        want = CHUNK_BYTES;
        let rest = pending.split_off(cut);
        let bytes = std::mem::replace(&mut pending, rest);
        let next = position.after(&bytes);
        if !bytes.is_empty() {
            let mut chunk = Some(Chunk { seq, bytes, position, more_follows: !end_of_input });
            seq += 1;
            order.sent = seq;
            while let Some(c) = chunk.take() {
                match jobs.try_send(c) {
                    Ok(()) => {}
                    Err(TrySendError::Full(c)) => {
                        chunk = Some(c);
                        order.wait_one()?;
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(ReadError::Input(std::io::Error::other("the ingest workers stopped")));
                    }
                }
            }
            order.drain()?;
        }
        position = next;
        if end_of_input {
            return Ok(None);
        }
    }
}

/// A worker: parses, validates and profiles chunks until the queue closes; returns the
/// profile of the valid rows of every chunk it read.
fn work(
    contract: &Contract,
    baseline: &Profile,
    header: &CsvHeader,
    queue: &Mutex<Receiver<Chunk>>,
    done: &SyncSender<Done>,
) -> Profile {
    let mut profiler = Profiler::new(contract, Profile::empty_like(contract, baseline));
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => break,
        };
        let Ok(chunk) = next else { break };
        let mut rows = Rows { rows: Vec::new(), values: Vec::new() };
        let read = read_csv_rows::<std::convert::Infallible>(
            contract,
            header,
            &chunk.bytes[..],
            chunk.position,
            chunk.more_follows,
            |row| {
                let (raw, outcome) = match row.outcome {
                    Ok(values) => {
                        profiler.observe(&values);
                        let start = rows.values.len();
                        rows.values.extend(values);
                        (Vec::new(), Ok(start..rows.values.len()))
                    }
                    Err(reasons) => (row.raw.to_vec(), Err(reasons)),
                };
                rows.rows.push(Parsed { line: row.line, raw, outcome });
                Ok(())
            },
        );
        let rows = match read {
            Ok(()) => Ok(rows),
            Err(ReadError::Input(e)) => Err(e),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        if done.send(Done { seq: chunk.seq, rows }).is_err() {
            break;
        }
    }
    profiler.finish()
}

/// Finished chunks, handed to the sink in their order.
struct InOrder<'a, 's> {
    next: u64,
    /// Chunks queued so far.
    sent: u64,
    waiting: BTreeMap<u64, Done>,
    done: &'a Receiver<Done>,
    sink: &'a mut (dyn Sink + 's),
}

impl InOrder<'_, '_> {
    /// Waits for one finished chunk, then hands on every chunk whose turn it is.
    fn wait_one(&mut self) -> Result<(), ReadError<Error>> {
        match self.done.recv() {
            Ok(done) => {
                self.waiting.insert(done.seq, done);
                self.hand_on()
            }
            Err(_) => Err(ReadError::Input(std::io::Error::other("the ingest workers stopped"))),
        }
    }

    /// Takes the chunks already finished, without waiting.
    fn drain(&mut self) -> Result<(), ReadError<Error>> {
        while let Ok(done) = self.done.try_recv() {
            self.waiting.insert(done.seq, done);
        }
        self.hand_on()
    }

    /// Waits for every chunk still out (the queue is closed) and hands them on.
    fn finish(&mut self) -> Result<(), ReadError<Error>> {
        while let Ok(done) = self.done.recv() {
            self.waiting.insert(done.seq, done);
            if let Err(e) = self.hand_on() {
                self.abandon();
                return Err(e);
            }
        }
        if self.next == self.sent {
            Ok(())
        } else {
            Err(ReadError::Input(std::io::Error::other("an ingest worker stopped before its chunk was read")))
        }
    }

    /// Takes back every chunk still out and drops it (the batch failed).
    fn abandon(&mut self) {
        while self.done.recv().is_ok() {}
        self.waiting.clear();
    }

    fn hand_on(&mut self) -> Result<(), ReadError<Error>> {
        while let Some(done) = self.waiting.remove(&self.next) {
            self.next += 1;
            let Rows { rows, values } = done.rows?;
            for row in rows {
                let outcome = row.outcome.map(|range| &values[range]);
                self.sink.take(row.line, &row.raw, outcome).map_err(ReadError::Consumer)?;
            }
        }
        Ok(())
    }
}
