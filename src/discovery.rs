//! The FeedAPI v2 discovery document, checked (js/src/source/discovery.ts's `parseDiscovery` calls this on what
//! `JSON.parse` gave): `{ token, partitions: [{ id, closed, startsAfterPartition, cursorFromPartitions }],
//! exactlyOnce }`. Pure reading of plain data: no call out but the reads (`Reflect.get`) and `JSON.stringify` of a
//! value shown in an error.

use crate::error::{feed_error, string};
use crate::options::whole_below;
use alloc::{
    format,
    string::{String, ToString},
    vec::Vec,
};
use feedpump_core::request::V2_PARTITIONS;
use js_sys::{Array, Error, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** One partition as discovery lists it. */
export interface V2Partition {
  /** SPEC: "String, but only allowed values is integers in the range [0..32767]". */
  id: number;
  /** No new events will ever appear on it: read it to its end once. */
  closed: boolean;
  /** Split method 1: start this partition only once that (closed) partition has been read to its end. */
  startsAfterPartition: number | undefined;
  /** Split method 2: "A cursor that was valid on an ancestor is also valid on the child". */
  cursorFromPartitions: number[];
}
/** What the discovery call answers (parseDiscovery). */
export interface Discovery {
  token: string;
  partitions: V2Partition[];
  exactlyOnce: boolean;
}
"#;

/// How much of a bad value an error shows (UTF-16 units, as JavaScript counts).
const SHOWN: usize = 60;

fn bad(why: &str) -> Error {
    feed_error("bad-discovery", why, 0)
}

pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub(crate) fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// A value as an error shows it: its JSON (`undefined` as such), cut at [`SHOWN`] UTF-16 units with `…`.
fn shown(v: &JsValue) -> String {
    let json = JSON::stringify(v).ok().and_then(|s| string(&s));
    let Some(json) = json else { return "undefined".into() };
    let units: Vec<u16> = json.encode_utf16().collect();
    if units.len() <= SHOWN {
        return json;
    }
    let mut cut = String::from_utf16_lossy(&units[..SHOWN]);
    cut.push('…');
    cut
}

/// SPEC: "String, but only allowed values is integers in the range [0..32767]"; a JSON number is taken too.
fn partition_id(v: &JsValue, what: &str) -> Result<JsValue, Error> {
    let n = match (string(v), crate::error::number(v)) {
        (Some(s), _) => {
            let b = s.as_bytes();
            let canonical = s == "0" || (b.len() <= 5 && b.first().is_some_and(|c| (b'1'..=b'9').contains(c)));
            if canonical && b.iter().all(u8::is_ascii_digit) {
                s.parse::<u32>().ok()
            } else {
                None
            }
        }
        (None, Some(f)) => whole_below(f, f64::from(V2_PARTITIONS)),
        (None, None) => None,
    };
    match n.filter(|&n| n < V2_PARTITIONS) {
        Some(n) => Ok(JsValue::from(n)),
        None => Err(bad(&format!("{what} must be a string holding an integer 0..32767, got {}", shown(v)))),
    }
}

/// Checks a parsed discovery document into `{ token, partitions, exactlyOnce }`; a malformed part is `bad-discovery`
/// naming where, with the value shown.
#[wasm_bindgen(js_name = parseDiscovery, unchecked_return_type = "Discovery")]
pub fn parse_discovery(body: JsValue) -> Result<Object, Error> {
    if !body.is_object() {
        return Err(bad("the answer is not a JSON object"));
    }
    let token = get(&body, "token");
    if !token.is_string() {
        return Err(bad("token must be a string"));
    }
    let partitions: Array = get(&body, "partitions").dyn_into().map_err(|_| bad("partitions must be an array"))?;
    let list = Array::new();
    for i in 0..partitions.length() {
        let p = partitions.get(i);
        if !p.is_object() {
            return Err(bad(&format!("partitions[{i}] is not an object")));
        }
        let from = get(&p, "cursorFromPartitions");
        let from: Array = if from.is_undefined() || from.is_null() {
            Array::new()
        } else {
            from.dyn_into().map_err(|_| bad(&format!("partitions[{i}].cursorFromPartitions must be an array")))?
        };
        let out = Object::new();
        set(&out, "id", &partition_id(&get(&p, "id"), &format!("partitions[{i}].id"))?);
        set(&out, "closed", &JsValue::from_bool(get(&p, "closed") == JsValue::TRUE));
        let after = get(&p, "startsAfterPartition");
        let after = if after.is_undefined() {
            after
        } else {
            partition_id(&after, &format!("partitions[{i}].startsAfterPartition"))?
        };
        set(&out, "startsAfterPartition", &after);
        let ids = Array::new();
        for k in 0..from.length() {
            ids.push(&partition_id(&from.get(k), &format!("partitions[{i}].cursorFromPartitions[{k}]"))?);
        }
        set(&out, "cursorFromPartitions", &ids);
        list.push(&out);
    }
    let doc = Object::new();
    set(&doc, "token", &token);
    set(&doc, "partitions", &list);
    set(&doc, "exactlyOnce", &JsValue::from_bool(get(&body, "exactlyOnce") == JsValue::TRUE));
    Ok(doc)
}

/// The errors of a discovery attempt (js/src/source/discovery.ts), by number: the messages live here, not in every
/// JS bundle. `n` and the strings `a` and `b` are what the message shows; `b` is the `cause` where the error has one.
/// 0: `bad-options`, the runtime refused the request (`a`: the URL, safe to show); 1: `truncated-body` (`a`: why,
/// `b`: the cause); 2: `stalled-body` after `n` ms; 3: `http-status` `n` (`a`: its status text, `b`: the body
/// snippet); 4: `bad-discovery`, a document over `n` bytes; 5: `bad-discovery`, not JSON (`b`: the cause).
#[wasm_bindgen(js_name = discoveryError)]
pub fn discovery_error(which: u8, n: u32, a: JsValue, b: JsValue) -> Error {
    let a = string(&a).unwrap_or_default();
    let (code, message) = match which {
        0 => ("bad-options", format!("fetch refuses the discovery request to {a}")),
        1 => ("truncated-body", format!("the discovery body was cut: {a}")),
        2 => ("stalled-body", format!("the discovery response did not come whole within {n} ms")),
        3 => ("http-status", format!("discovery answered {n} {a}: {}", string(&b).unwrap_or_default())),
        4 => ("bad-discovery", format!("the discovery document is larger than {n} bytes (maxLineLength)")),
        _ => ("bad-discovery", "the discovery answer is not JSON".to_string()),
    };
    let e = feed_error(code, &message, 0);
    match which {
        1 | 5 => crate::error::with_cause(e, b),
        3 => {
            crate::error::set(&e, "status", &JsValue::from(n));
            crate::error::set(&e, "bodySnippet", &b);
            e
        }
        _ => e,
    }
}
