#![no_main]
//! libFuzzer target: see `pel_fuzz::json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pel_fuzz::json::run(data));
