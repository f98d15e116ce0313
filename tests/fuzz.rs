//! Hostile capture files: every fixture through the capture reader and the
//! reassembler, and a short run of mutation fuzzing without coverage guidance.
//! An input that once crashed them is kept in `fixtures/` as a fixture of its own
//! (see fuzz/README.md), and is checked with the others.
//!
//! The long, coverage-guided run is `fuzz/` (cargo-fuzz, nightly); this one needs
//! only stable Rust, so it runs in CI on every change. It starts from the fixtures,
//! mutates them with a seeded generator (so a run is the same everywhere) and feeds
//! each result through `fuzz_support::check_capture`. `TIBURONCIN_FUZZ_INPUTS` sets
//! how many inputs (default 40,000), `TIBURONCIN_FUZZ_SEED` the seed.

mod fuzz_support;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Instant;

use fuzz_support::{Rng, check_capture, mutate};

const DEFAULT_INPUTS: u64 = 40_000;
const DEFAULT_SEED: u64 = 0x7469_6275_726f_6e63; // "tiburonc"

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The captures the mutations start from: the fixtures (tcpdump's and dumpcap's),
/// and captures of our own `-w` (`fuzz/seeds/`).
fn seeds() -> Vec<Vec<u8>> {
    let mut paths = files_in(&fixtures());
    paths.extend(files_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds"),
    ));
    paths
        .iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "bin")
        })
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn the_fixtures_pass_the_check() {
    let seeds = seeds();
    assert!(seeds.len() >= 10, "the fixtures or fuzz/seeds are missing");
    for seed in &seeds {
        check_capture(seed);
    }
}

/// Mutation fuzzing without coverage guidance: random changes to the fixtures, each
/// fed through the whole reading path. A crash is saved under the target directory,
/// to become a fixture once it is fixed.
#[test]
fn mutation_fuzzing_without_coverage_guidance() {
    let inputs = env_number("TIBURONCIN_FUZZ_INPUTS", DEFAULT_INPUTS);
    let seed = env_number("TIBURONCIN_FUZZ_SEED", DEFAULT_SEED);
    let seeds = seeds();
    let workers = thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let started = Instant::now();
    // Quiet panics: a crash is reported once, with its input, below.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let crashes: Vec<(PathBuf, String)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let seeds = &seeds;
                scope.spawn(move || {
                    let mut rng = Rng::new(seed.wrapping_add(worker));
                    let mut crashes = Vec::new();
                    let share = inputs / workers + u64::from(worker < inputs % workers);
                    for n in 0..share {
                        let mut data = seeds[rng.below(seeds.len())].clone();
                        let other = &seeds[rng.below(seeds.len())];
                        mutate(&mut rng, &mut data, other);
                        let outcome =
                            panic::catch_unwind(AssertUnwindSafe(|| check_capture(&data)));
                        if let Err(panic) = outcome {
                            let what = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            let path = save_crash(&data, worker, n);
                            crashes.push((path, what));
                        }
                    }
                    crashes
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    panic::set_hook(hook);
    eprintln!(
        "mutation fuzzing: {inputs} inputs, seed {seed}, {workers} threads, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        crashes.is_empty(),
        "{} crashing inputs, first: {:?}",
        crashes.len(),
        crashes.first()
    );
}

fn save_crash(data: &[u8], worker: u64, n: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("crash-{worker}-{n}.bin"));
    std::fs::write(&path, data).unwrap();
    path
}
