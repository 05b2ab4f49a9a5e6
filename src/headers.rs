//! The request headers the caller's `requestHeaders` hook gives, checked one by one before anything is sent.
//!
//! The runtime's own errors for a header it refuses (a value with a newline) quote the value, which is often a
//! credential, so they are never shown: a refused header is a `bad-header` error that names the header only. The
//! values are kept (as [`Secrets`]) only to blank them out of other errors' messages.

use crate::error::feed_error;
use crate::fetch::{array_from, get_symbol, object_entries, HeaderList, Url};
use js_sys::{Error, Function, JsString, Symbol};
use wasm_bindgen::{JsCast, JsValue};

/// Texts that must never appear in an error: the values of the request headers and of the URL's query.
#[derive(Debug, Default)]
pub(crate) struct Secrets(Vec<String>);

/// Shorter values (in bytes) are not blanked (they would blank every `1` of a message, and hide nothing).
const MIN_SECRET_CHARS: usize = 3;

impl Secrets {
    /// Keeps the list longest first, so a value that contains another is blanked whole.
    fn add(&mut self, s: String) {
        if s.len() >= MIN_SECRET_CHARS {
            let at = self.0.iter().position(|t| t.len() < s.len()).unwrap_or(self.0.len());
            self.0.insert(at, s);
        }
    }

    /// The query of `url`: whole (as written) and each value (decoded).
    pub(crate) fn of_url(url: &str) -> Secrets {
        let mut out = Secrets::default();
        if let Ok(u) = Url::new(url) {
            if let Some(query) = u.search().strip_prefix('?') {
                out.add(query.to_string());
            }
            for v in u.search_params().values() {
                if let Some(v) = v.as_string() {
                    out.add(v);
                }
            }
        }
        out
    }

    /// `text` with every secret replaced by `[hidden]`, and whether any was. (JS string methods: Rust's substring
    /// search would add kilobytes to the module for this error path.)
    pub(crate) fn blank(&self, text: &str) -> (String, bool) {
        let mut out = JsString::from(text);
        let mut found = false;
        for s in &self.0 {
            if out.includes(s, 0) {
                out = out.replace_all(s, "[hidden]");
                found = true;
            }
        }
        (out.into(), found)
    }
}

/// A URL for a message: origin and path, never the query (it may hold an API key) or user info.
pub(crate) fn shown_url(url: &str) -> String {
    match Url::new(url) {
        Ok(u) => format!("{}{}", u.origin(), u.pathname()),
        Err(_) => "the feed URL".to_string(),
    }
}

fn not_headers(got: &JsValue) -> Error {
    let what = crate::fetch::kind_of(got);
    feed_error(
        "bad-options",
        &format!("requestHeaders must give headers: an object, an array of [name, value] pairs or a Headers (it gave {what})"),
        0,
    )
}

/// Builds the `Headers` to send from what the hook gave (`HeadersInit`: a record, pairs, a `Headers` or `Map`), and
/// adds the values to `secrets`. A header the runtime refuses is a `bad-header` error naming it.
pub(crate) fn to_headers(given: &JsValue, secrets: &mut Secrets, page: u32) -> Result<HeaderList, Error> {
    let entries = if get_symbol(given, &Symbol::iterator()).is_instance_of::<Function>() {
        array_from(given)
    } else if given.is_object() {
        object_entries(given)
    } else {
        return Err(not_headers(given));
    }
    .map_err(|_| not_headers(given))?;
    let headers = HeaderList::new().map_err(|_| not_headers(given))?;
    for entry in entries.iter() {
        let pair = array_from(&entry).ok().filter(|p| p.length() == 2).ok_or_else(|| not_headers(given))?;
        let (name, value) = (pair.get(0), pair.get(1));
        if let Some(v) = value.as_string() {
            secrets.add(v);
        }
        if headers.append(&name, &value).is_err() {
            // JSON quoting shows a name with a newline on one line.
            let shown = match js_sys::JSON::stringify(&name).ok().and_then(|s| s.as_string()) {
                Some(quoted) if name.is_string() => quoted,
                _ => format!("(a name that is {})", crate::fetch::kind_of(&name)),
            };
            let msg = format!("requestHeaders gave a header that cannot be sent: {shown} (its value is not shown)");
            return Err(feed_error("bad-header", &msg, page));
        }
    }
    Ok(headers)
}
