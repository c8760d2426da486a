//! The baseline builder behind `mlops profile` and `mlops model register`: long labels are
//! profiled by stand-ins, so neither its memory nor the profile it writes grows with them.

use std::io::Write;

use crate::{MIB, contract, letters, mb, peak_of, serial};

/// The bound: the read buffer, the longest row twice, the profile's stand-ins.
const BOUND: usize = 4 * MIB;

#[test]
fn profiles_of_long_labels_stay_small_in_memory_and_on_disk() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let contract = contract();
    for (labels, label_bytes) in [(1000u64, 128 << 10), (4000, 32 << 10)] {
        let path = dir.path().join(format!("labels-{labels}.csv"));
        let text = letters(label_bytes, 4);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
        writeln!(file, "id,note,label").expect("write");
        for i in 0..labels {
            write!(file, "{i},n,{i:08}").expect("write");
            file.write_all(&text[8..]).expect("write");
            writeln!(file).expect("write");
        }
        file.flush().expect("flush");
        drop(file);
        let files = [path];
        let (profiled, peak) =
            peak_of(|| mlops_flows::baseline::training_baseline(&contract, &files).expect("a baseline"));
        let json = profiled.profile.to_json();
        assert_eq!(profiled.profile.rows, labels);
        println!("{labels} labels of {label_bytes} bytes: peak {}, profile {} bytes", mb(peak), json.len());
        assert!(json.len() < 512 << 10, "a profile of {} bytes", json.len());
        assert!(peak < BOUND, "peak {} over the bound {}", mb(peak), mb(BOUND));
        // Profiling on that baseline's edges (as `mlops profile --baseline` does) is bounded too.
        let (again, peak) = peak_of(|| {
            mlops_flows::baseline::profile_files(&contract, &files, Some(&profiled.profile)).expect("a profile")
        });
        assert_eq!(again.profile.rows, labels);
        assert!(peak < BOUND, "peak {} over the bound {}", mb(peak), mb(BOUND));
    }
}
