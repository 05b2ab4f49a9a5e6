//! Pure request building.
//!
//! ZEH v1 (PROTOCOL.md 1.2): `GET <feed-url>?n=<n>&cursor0=..&cursor{n-1}=..[&pagesizehint=..][&headers=a,b|_all]`.
//! `pagesizehint` is omitted when unset and `headers` when empty, as the Go, Python and .NET clients do. Cursor values
//! are percent-encoded (everything but RFC 3986 unreserved characters), so any string round-trips. Query parameters
//! already in the feed URL are kept, except ones with the names above, which would make the request ambiguous (Go's
//! server takes the first of a repeated parameter, Python's the last). A `#fragment` is dropped: it is never sent.

use crate::cursor::CursorSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Options of a v1 request besides the cursors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1Options {
    /// `pagesizehint`; `None` or `Some(0)` omits it.
    pub page_size_hint: Option<u32>,
    /// `headers`: names already joined by `,`, or `_all`; empty omits it.
    pub headers: String,
    /// The partitions to read, ascending; empty reads all `n`. ZEH: "one per partition to read in this call" (e.g.
    /// one worker per partition sends only its own `cursor<p>`).
    pub partitions: Vec<u32>,
}

impl V1Options {
    /// Whether `partition` is read by these requests.
    pub fn reads(&self, partition: u32) -> bool {
        self.partitions.is_empty() || self.partitions.binary_search(&partition).is_ok()
    }
}

/// Appends `s` percent-encoded (all but unreserved characters).
pub fn percent_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn reserved(name: &str) -> bool {
    matches!(name, "n" | "pagesizehint" | "headers")
        || name.strip_prefix("cursor").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Builds the URL of a v1 page request reading every partition of `cursors`.
///
/// ```
/// use feedpump_core::{cursor::CursorSet, request::{v1_url, V1Options}};
/// let cursors = CursorSet::new(vec!["_first".into(), "a b&c".into()]).unwrap();
/// let opts = V1Options { page_size_hint: Some(100), headers: "ce_id".into(), ..V1Options::default() };
/// assert_eq!(v1_url("http://h/feed/v1?key=1", &cursors, &opts),
///     "http://h/feed/v1?key=1&n=2&cursor0=_first&cursor1=a%20b%26c&pagesizehint=100&headers=ce_id");
/// ```
pub fn v1_url(base: &str, cursors: &CursorSet, opts: &V1Options) -> String {
    let base = base.split('#').next().unwrap_or(base);
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let mut url = String::with_capacity(base.len() + 32 * cursors.len() as usize);
    url.push_str(path);
    let mut sep = '?';
    for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        let name = pair.split('=').next().unwrap_or(pair);
        if !reserved(name) {
            url.push(sep);
            url.push_str(pair);
            sep = '&';
        }
    }
    let _ = write!(url, "{sep}n={}", cursors.len());
    for (i, c) in cursors.as_slice().iter().enumerate().filter(|(i, _)| opts.reads(*i as u32)) {
        let _ = write!(url, "&cursor{i}=");
        percent_encode(&mut url, c);
    }
    if let Some(hint) = opts.page_size_hint.filter(|&h| h > 0) {
        let _ = write!(url, "&pagesizehint={hint}");
    }
    if !opts.headers.is_empty() {
        url.push_str("&headers=");
        for (i, name) in opts.headers.split(',').enumerate() {
            if i > 0 {
                url.push(',');
            }
            percent_encode(&mut url, name);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn only_the_partitions_read_are_sent() {
        let c = CursorSet::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let opts = V1Options { partitions: vec![1, 2], ..V1Options::default() };
        assert_eq!(v1_url("http://h/f", &c, &opts), "http://h/f?n=3&cursor1=b&cursor2=c");
    }

    #[test]
    fn keeps_foreign_params_and_replaces_ours() {
        let c = CursorSet::new(vec!["x=y#%é".into()]).unwrap();
        let u = v1_url("http://h/f?n=9&cursor0=old&a=1&cursorx=2#frag", &c, &V1Options::default());
        assert_eq!(u, "http://h/f?a=1&cursorx=2&n=1&cursor0=x%3Dy%23%25%C3%A9");
    }
}
