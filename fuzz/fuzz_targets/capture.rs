//! Coverage-guided fuzzing of the capture reader and the reassembler: each input is a
//! capture file's bytes, checked by the same function as the CI run in
//! `tests/fuzz.rs`. Seed it with the fixtures (see `fuzz/README.md`).

#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz_support::check_capture(data);
});
