//! How an event's values are written into a batch text: the `\u` escapes of parsed mode
//! ([`super::BatchBuilder::set_escape`]) and lengths in UTF-16 units, JavaScript's string indices.

use alloc::string::String;

/// Appends `headers` (with its comma) and `data` to `text` with every character outside ASCII written as a JSON `\u`
/// escape (see [`super::BatchBuilder::set_escape`]; both must be [`escapable`]); returns the data's start relative to
/// what it appended (all ASCII, so bytes are UTF-16 units). Out of line: only events with text outside ASCII come here.
#[cold]
#[inline(never)]
pub(super) fn escaped(text: &mut String, headers: Option<&str>, data: &str) -> u32 {
    let from = text.len();
    if let Some(headers) = headers {
        escape(text, headers);
        text.push(',');
    }
    let data_start = text.len() - from;
    escape(text, data);
    data_start as u32
}

/// Appends `s` with each character outside ASCII as `\uXXXX`, one per UTF-16 unit.
pub(super) fn escape(text: &mut String, s: &str) {
    use core::fmt::Write;
    for c in s.chars() {
        if c.is_ascii() {
            text.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                // Writing to a `String` cannot fail.
                let _ = write!(text, "\\u{unit:04x}");
            }
        }
    }
}

/// Whether escaping `s` keeps its meaning: no character outside ASCII comes right after an escaping backslash
/// (`"\é"` is not JSON; escaped it would read as the valid `"\\u00e9"`).
pub(super) fn escapable(s: &str) -> bool {
    let mut escaping = false;
    for &b in s.as_bytes() {
        if escaping && b >= 0x80 {
            return false;
        }
        escaping = b == b'\\' && !escaping;
    }
    true
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
