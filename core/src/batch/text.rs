//! How an event's values are written into a batch text: the `\u` escapes of parsed mode
//! ([`super::BatchBuilder::set_escape`]) and lengths in UTF-16 units, JavaScript's string indices.

use alloc::vec::Vec;

/// Appends `headers` (with its comma) and `data` to `text` with every character outside ASCII written as a JSON `\u`
/// escape (see [`super::BatchBuilder::set_escape`]; both from [`escapable`]); returns the data's start relative to
/// what it appended (all ASCII, so bytes are UTF-16 units). Out of line: only events with text outside ASCII come here.
#[cold]
#[inline(never)]
pub(super) fn escaped(text: &mut Vec<u8>, headers: Option<&str>, data: &str) -> u32 {
    let from = text.len();
    if let Some(headers) = headers {
        escape(text, headers);
        text.push(b',');
    }
    let data_start = text.len() - from;
    escape(text, data);
    data_start as u32
}

/// Appends `s` with each character outside ASCII as `\uXXXX`, one per UTF-16 unit.
pub(super) fn escape(text: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for c in s.chars() {
        if c.is_ascii() {
            text.push(c as u8);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                text.extend_from_slice(b"\\u");
                text.extend((0..4).rev().map(|k| HEX[usize::from(*unit >> (4 * k) & 0xf)]));
            }
        }
    }
}

/// `s` as text, when escaping it keeps its meaning: no character outside ASCII comes right after an escaping
/// backslash (`"\é"` is not JSON; escaped it would read as the valid `"\\u00e9"`). (`s` is valid UTF-8: the check
/// is made again only here, for the events that are not ASCII.)
pub(super) fn escapable(s: &[u8]) -> Option<&str> {
    let mut escaping = false;
    for &b in s {
        if escaping && b >= 0x80 {
            return None;
        }
        escaping = b == b'\\' && !escaping;
    }
    core::str::from_utf8(s).ok()
}

/// Length of valid UTF-8 `bytes` in UTF-16 code units (JavaScript's `String.length`): one per character, two for
/// characters outside the BMP.
pub(super) fn utf16_len(bytes: &[u8]) -> u32 {
    if bytes.is_ascii() {
        return bytes.len() as u32;
    }
    utf16_len_non_ascii(bytes)
}

pub(super) fn utf16_len_non_ascii(bytes: &[u8]) -> u32 {
    bytes.iter().map(|&b| u32::from((b & 0xC0) != 0x80) + u32::from(b >= 0xF0)).sum()
}
