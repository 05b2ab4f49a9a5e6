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

/// FeedAPI v2 event-type filter (SPEC "Events endpoint"): `event-types` or `skip-event-types`, types joined by `;`,
/// never both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EventTypes {
    /// No filter.
    #[default]
    All,
    /// Only these types (`event-types`).
    Only(Vec<String>),
    /// All but these types (`skip-event-types`).
    Skip(Vec<String>),
}

/// FeedAPI v2 partition ids are `0..V2_PARTITIONS` (SPEC: "only allowed values is integers in the range
/// [0..32767]").
pub const V2_PARTITIONS: u32 = 32_768;

/// A FeedAPI v2 events request besides the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Options {
    /// The token from discovery.
    pub token: String,
    /// The partition id.
    pub partition: u32,
    /// `pagesizehint`; `None` or `Some(0)` omits it.
    pub page_size_hint: Option<u32>,
    /// Server-side event-type filter.
    pub event_types: EventTypes,
}

/// Splits a URL into the part before `?`, the query (without `?`) and drops any `#fragment`.
fn split_url(base: &str) -> (&str, Option<&str>) {
    let base = base.split('#').next().unwrap_or(base);
    match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    }
}

/// Builds the URL of a FeedAPI v2 events request: `<feed>/events?token=..&partition=..&cursor=..[&pagesizehint=..]
/// [&event-types=a;b | &skip-event-types=a;b]` (SPEC "Events endpoint"). Query parameters of the feed URL are kept.
///
/// ```
/// use feedpump_core::request::{v2_url, EventTypes, V2Options};
/// let opts = V2Options { token: "xaf32".into(), partition: 16000, page_size_hint: Some(50),
///     event_types: EventTypes::Only(vec!["a.b".into(), "c".into()]) };
/// assert_eq!(v2_url("https://service/myfeed/?k=1", &opts, "f1&c"),
///     "https://service/myfeed/events?k=1&token=xaf32&partition=16000&cursor=f1%26c&pagesizehint=50&event-types=a.b;c");
/// ```
pub fn v2_url(base: &str, opts: &V2Options, cursor: &str) -> String {
    let (path, query) = split_url(base);
    let mut url = String::with_capacity(base.len() + 64 + cursor.len());
    url.push_str(path.trim_end_matches('/'));
    url.push_str("/events?");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push_str(q);
        url.push('&');
    }
    url.push_str("token=");
    percent_encode(&mut url, &opts.token);
    let _ = write!(url, "&partition={}&cursor=", opts.partition);
    percent_encode(&mut url, cursor);
    if let Some(hint) = opts.page_size_hint.filter(|&h| h > 0) {
        let _ = write!(url, "&pagesizehint={hint}");
    }
    let (name, types) = match &opts.event_types {
        EventTypes::All => return url,
        EventTypes::Only(t) => ("event-types", t),
        EventTypes::Skip(t) => ("skip-event-types", t),
    };
    let _ = write!(url, "&{name}=");
    for (i, t) in types.iter().enumerate() {
        if i > 0 {
            url.push(';');
        }
        percent_encode(&mut url, t);
    }
    url
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
    let (path, query) = split_url(base);
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
