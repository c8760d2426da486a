//! Profiles of local row files, streamed: the one baseline builder, used by `mlops model
//! register` (the training data's baseline), `mlops profile` and `mlops drift`.

use std::path::{Path, PathBuf};

use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_drift::{Profile, Profiler};
use mlops_formats::rows::{FileKind, open_file, read_batch};

use crate::error::{Error, Result};

/// Calls `on_values` with every valid row of `files` (CSV or JSON Lines, optionally gzip, by
/// name); returns the number of rows the contract rejected.
pub fn each_row(contract: &Contract, files: &[PathBuf], mut on_values: impl FnMut(&[Value])) -> Result<u64> {
    let mut rejected = 0;
    for file in files {
        let name = file.display().to_string();
        let input = open_file(file).map_err(|source| Error::ReadFile { path: name.clone(), source })?;
        read_batch(contract, FileKind::of(&name), input, |row| {
            match &row.outcome {
                Ok(values) => on_values(values),
                Err(_) => rejected += 1,
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .map_err(|e| Error::Rows { name: name.clone(), reason: e.to_string() })?;
    }
    Ok(rejected)
}

/// What a profile of row files holds beside the profile itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiled {
    pub profile: Profile,
    /// Rows the contract rejected, left out of the profile.
    pub rejected: u64,
}

/// A profile of row files: on `baseline`'s histogram edges, or, without one, a baseline of its
/// own (deciles of each numeric column, which takes a first pass over the files that keeps
/// only the numeric values).
pub fn profile_files(contract: &Contract, files: &[PathBuf], baseline: Option<&Profile>) -> Result<Profiled> {
    profile_with(contract, baseline, |on_row| each_row(contract, files, on_row))
}

/// The baseline of rows held in memory (a pipeline's training rows): as [`training_baseline`]
/// computes it for files.
pub fn rows_baseline(contract: &Contract, rows: &[Vec<Value>]) -> Result<Profiled> {
    let profiled = profile_with(contract, None, |on_row| {
        rows.iter().for_each(|r| on_row(r));
        Ok(0)
    })?;
    if profiled.profile.rows == 0 {
        return Err(Error::Rows { name: "the training rows".into(), reason: "there is none".into() });
    }
    Ok(profiled)
}

/// Profiles the rows `each` passes (once per pass it is called for), on `baseline` or on
/// deciles of their own.
fn profile_with(
    contract: &Contract,
    baseline: Option<&Profile>,
    mut each: impl FnMut(&mut dyn FnMut(&[Value])) -> Result<u64>,
) -> Result<Profiled> {
    let empty = match baseline {
        Some(b) => Profile::empty_like(contract, b),
        None => {
            let numeric: Vec<(usize, String)> = contract
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.kind.is_numeric())
                .map(|(i, c)| (i, c.name.clone()))
                .collect();
            let mut values: Vec<Vec<f64>> = vec![Vec::new(); numeric.len()];
            each(&mut |row: &[Value]| {
                for ((i, _), v) in numeric.iter().zip(values.iter_mut()) {
                    if let Some(x) = row.get(*i).and_then(Value::as_f64) {
                        v.push(x);
                    }
                }
            })?;
            Profile::empty_with_deciles(contract, numeric.into_iter().map(|(_, n)| n).zip(values).collect())
        }
    };
    let mut profiler = Profiler::new(contract, empty);
    let rejected = each(&mut |row: &[Value]| profiler.observe(row))?;
    Ok(Profiled { profile: profiler.finish(), rejected })
}

/// The baseline of a model's training data: [`profile_files`] without a baseline, refusing
/// training data with no valid row.
pub fn training_baseline(contract: &Contract, files: &[PathBuf]) -> Result<Profiled> {
    let profiled = profile_files(contract, files, None)?;
    if profiled.profile.rows == 0 {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(Error::Rows {
            name: names.join(", "),
            reason: "the training data has no row that satisfies the contract".into(),
        });
    }
    Ok(profiled)
}

/// Reads a profile file (`.json`, optionally gzip).
pub fn read_profile(path: &Path) -> Result<Profile> {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    open_file(path)
        .and_then(|mut r| std::io::Read::read_to_end(&mut r, &mut bytes))
        .map_err(|source| Error::ReadFile { path: name.clone(), source })?;
    Ok(Profile::from_json(&bytes, &name)?)
}
