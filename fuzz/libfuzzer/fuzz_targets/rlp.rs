#![no_main]
//! libFuzzer target: see `pel_fuzz::rlp`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pel_fuzz::rlp::run(data));
