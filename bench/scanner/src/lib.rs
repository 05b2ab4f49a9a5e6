//! Exports for bench/scanner/run.mjs: a buffer for the feed's bytes and one pass over its lines per mode.
use feedpump_core::blocks::{skip_container, skip_container_bytes};
use feedpump_core::line::{classify_v1, LineKind};

static mut BUF: Vec<u8> = Vec::new();

/// A buffer of `len` bytes in wasm memory for the feed.
#[no_mangle]
pub extern "C" fn buf(len: usize) -> *mut u8 {
    unsafe {
        let b = &mut *core::ptr::addr_of_mut!(BUF);
        b.resize(len, 0);
        b.as_mut_ptr()
    }
}

/// One pass over the buffer's lines: mode 0 skips each line's top-level object 16 bytes at a time, mode 1 byte by
/// byte (the scan before the block pass), mode 2 classifies each line (`classify_v1`, which uses the block pass).
/// Returns a checksum of the results, so that modes 0 and 1 can be compared and nothing is optimised away.
#[no_mangle]
pub extern "C" fn run(mode: u32) -> u32 {
    let s = unsafe { &*core::ptr::addr_of!(BUF) };
    let mut sum = 0u32;
    for line in s.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        sum = sum.wrapping_add(match mode {
            0 => skip_container(line, 0).unwrap_or(0) as u32,
            1 => skip_container_bytes(line, 0).unwrap_or(0) as u32,
            _ => match classify_v1(line, 4) {
                Ok(LineKind::Event { data, .. }) => data.end as u32,
                Ok(_) => 1,
                Err(_) => 2,
            },
        });
    }
    sum
}
