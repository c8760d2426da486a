//! Memory bounds per row, per field, per label and per JSON value, and the rows reader's
//! invariants under random input.
//!
//! Peaks are measured by a counting allocator (`peakmem-alloc`): the most bytes held on the
//! heap at once while a piece of work runs, above what was held when it started. Every case
//! runs at sizes several times apart and asserts the same bound at each: the peak does not
//! grow with the input.
//!
//! The tests of this binary take one lock each, so that no test allocates while another
//! one is measured.

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};

use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

mod ingest;
mod predict;
mod profile;
mod properties;

#[global_allocator]
static ALLOCATOR: &PeakMemAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lock that keeps the tests of this binary from running at once.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` and returns its result and the peak heap above what was held before it.
fn peak_of<R>(work: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATOR.reset_peak_memory();
    let result = work();
    (result, ALLOCATOR.get_peak_memory())
}

const MIB: usize = 1 << 20;

/// Megabytes, for messages.
fn mb(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// The contract of the cases: an id, free text, a category with no allowed list.
const CONTRACT: &str = "dataset: bounds\ncolumns:\n  - {name: id, type: int}\n  - {name: note, type: string}\n  - {name: label, type: category}\n";

fn contract() -> mlops_contract::Contract {
    mlops_contract::Contract::from_yaml(CONTRACT, "bounds.yaml").expect("contract")
}

/// `len` bytes of letters from a fixed pseudo-random sequence: text that compresses about as
/// well as real text does, not as well as one repeated byte.
fn letters(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + (state % 26) as u8
        })
        .collect()
}
