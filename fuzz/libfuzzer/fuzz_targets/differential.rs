#![no_main]
//! libFuzzer target: see `pel_fuzz::differential`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pel_fuzz::differential::run(data));
