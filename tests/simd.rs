//! The envelope scanner's block pass with its `simd128` mask extraction (the one the shipped wasm runs), against the
//! byte-at-a-time scan and the scalar extraction, on the same inputs as the core's native differential test.
#![cfg(target_arch = "wasm32")]

use feedpump_core::blocks::{differential, masks, masks_scalar, skip_container, BLOCK};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn the_extraction_is_simd128_here() {
    // The build enables simd128 (.cargo/config.toml), so `masks` is the vector one (checked when this compiles).
    const { assert!(cfg!(target_feature = "simd128"), "the wasm build enables simd128") };
    // Every byte value at every lane.
    for b in 0..=255u8 {
        for lane in 0..BLOCK {
            let mut block = [b'a'; BLOCK];
            block[lane] = b;
            assert_eq!(masks(&block), masks_scalar(&block), "byte {b:#x} at lane {lane}");
        }
    }
}

#[wasm_bindgen_test]
fn the_newline_search_says_where_and_whether_the_bytes_before_are_ascii() {
    differential::check_newline_everywhere(80);
}

#[wasm_bindgen_test]
fn blocks_scan_as_bytes_do_on_random_and_adversarial_lines() {
    let random = differential::random(0x5eed, 5_000, 300);
    let adversarial = differential::adversarial();
    for line in random.iter().chain(&adversarial) {
        differential::check(line);
    }
    let closed = adversarial.iter().filter(|l| skip_container(l, 0).is_ok()).count();
    assert!(closed > 0 && closed < adversarial.len());
}
