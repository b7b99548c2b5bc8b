#![no_main]
//! libFuzzer target: see `pel_fuzz::rpc`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pel_fuzz::rpc::run(data));
