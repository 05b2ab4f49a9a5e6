//! Line classification and cursor unescaping at their exact bounds, through the public API: the cases cargo-mutants
//! showed no other test pinned (a changed bound still passed every test).
#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::line::{classify_v1, unescape, LineKind};
use feedpump_core::ErrorKind;

fn partition_of(raw: &str, n: u32) -> Result<u32, ErrorKind> {
    match classify_v1(format!("{{\"partition\":{raw},\"data\":1}}").as_bytes(), n) {
        Ok(LineKind::Event { partition, .. }) => Ok(partition),
        Ok(other) => panic!("not an event: {other:?}"),
        Err(e) => Err(e.kind),
    }
}

#[test]
fn ten_digit_partitions_are_read_up_to_the_partition_count() {
    // A partition number has at most 10 digits (u32); a 10-digit one below n is a partition like any other.
    assert_eq!(partition_of("1000000000", u32::MAX), Ok(1_000_000_000));
    assert_eq!(partition_of("4294967294", u32::MAX), Ok(4_294_967_294));
    assert_eq!(partition_of("4294967295", u32::MAX), Err(ErrorKind::BadPartition), "not below n");
    assert_eq!(partition_of("99999999999", u32::MAX), Err(ErrorKind::BadPartition), "11 digits");
}

#[test]
fn a_unicode_escape_cut_short_is_a_bad_cursor() {
    for raw in [r"\u", r"\u1", r"\u12", r"\u123", r"a\u00e", r"\ud83d\ude0", r"\ud83d\u"] {
        let e = unescape(raw.as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadCursor, "{raw}");
    }
    assert_eq!(unescape(br"\u00e6").unwrap(), "\u{e6}", "four digits at the very end");
}

#[test]
fn a_space_right_after_an_escape_or_before_the_first_one_is_kept() {
    // 0x20 is the first byte that is no control character, wherever it stands next to an escape.
    assert_eq!(unescape(br" \n").unwrap(), " \n");
    assert_eq!(unescape(br"\n ").unwrap(), "\n ");
    assert_eq!(unescape(br#"\" \" "#).unwrap(), "\" \" ");
    assert_eq!(unescape(b"\\n\x1f").unwrap_err().kind, ErrorKind::BadCursor, "a control character after an escape");
}
