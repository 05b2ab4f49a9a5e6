#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| feedpump_fuzz::schedule(data));
