//! The core's FeedAPI v2 schedule ([`feedpump_core::schedule`]) for js/src/source/v2.ts, which opens a reader for
//! each turn the schedule names and reports how the turn went. Pure state: the caller passes the time and starts the
//! timers. The partition lists are read as `parseDiscovery` gives them (`{ id, closed, startsAfterPartition,
//! cursorFromPartitions }`, already checked), and a read step hands back the listed object itself.

use crate::discovery::{get, set};
use crate::error::feed_error;
use alloc::{format, vec::Vec};
use feedpump_core::schedule::{self, Ids, Partition, ScheduleError, Step};
use feedpump_core::LivePolicy;
use js_sys::{Array, Error, Object};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** What a v2 feed does next (Schedule.poll). */
export type ScheduleStep =
  /** Read this partition (the object listed in the discovery planned), for one turn. */
  | { kind: 'read'; partition: V2Partition }
  /** Live: nothing is due; wait this long (then poll again; `rediscover`: make the discovery again first). */
  | { kind: 'wait'; ms: number; rediscover: boolean }
  /** Every partition in scope is caught up (signal it once). */
  | { kind: 'caught-up' }
  /** Not live: everything is read. */
  | { kind: 'end' };
"#;

fn id(v: &JsValue) -> Option<u16> {
    crate::error::number(v).map(|f| f as u16)
}

/// The numbers of an array (anything else: none).
fn ids(v: &JsValue) -> Vec<u16> {
    let mut out = Vec::new();
    if let Some(a) = v.dyn_ref::<Array>() {
        for k in 0..a.length() {
            out.extend(id(&a.get(k)));
        }
    }
    out
}

/// A discovery's partition list for the core.
fn partitions(list: &Array) -> Vec<Partition> {
    let mut out = Vec::new();
    for i in 0..list.length() {
        let p = list.get(i);
        out.push(Partition {
            id: id(&get(&p, "id")).unwrap_or_default(),
            closed: get(&p, "closed") == JsValue::TRUE,
            starts_after: id(&get(&p, "startsAfterPartition")),
            cursor_from: ids(&get(&p, "cursorFromPartitions")),
        });
    }
    out
}

fn bad(e: ScheduleError) -> Error {
    // `format!`, not `to_string`: what `format!` needs is in the module already.
    feed_error(e.code(), &format!("{e}"), 0)
}

/// Which FeedAPI v2 partition one feed reads next (docs/feedapi-v2.md §8).
#[wasm_bindgen]
#[derive(Debug)]
pub struct Schedule {
    core: schedule::Schedule,
    /// The list last planned: a read step names one of its objects.
    partitions: Array,
}

#[wasm_bindgen]
impl Schedule {
    /// `partitions`: read only these ids and their split children (`undefined`: all). `live`: poll a caught-up
    /// partition again after this many ms (`'default'`: the core's live interval; `undefined`: end once every
    /// partition is caught up). `start`: where the first round starts among the partitions due (modulo their count;
    /// random, so that runs shorter than a turn do not all read the first listed partition).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "number[] | undefined")] partitions: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number | 'default' | undefined")] live: JsValue,
        start: u32,
    ) -> Schedule {
        let filter = (!partitions.is_undefined()).then(|| Ids::new(&ids(&partitions)));
        let interval = (!live.is_undefined())
            .then(|| crate::error::number(&live).map_or(LivePolicy::default().min_ms, |ms| ms.max(0.0) as u64));
        Schedule { core: schedule::Schedule::new(filter, interval, start), partitions: Array::new() }
    }

    /// Plans from a (new) discovery `{ partitions }`. Throws `'bad-discovery'`, changing nothing, for a partition
    /// listed twice.
    pub fn plan(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "{ partitions: readonly V2Partition[] }")] discovery: JsValue,
    ) -> Result<(), Error> {
        let list = get(&discovery, "partitions").dyn_into::<Array>().unwrap_or_default();
        self.core.plan(&partitions(&list)).map_err(bad)?;
        self.partitions = list;
        Ok(())
    }

    /// The next step at `now` (ms, any monotonic clock): `{ kind: 'read', partition }` (one of the listed objects),
    /// `{ kind: 'wait', ms, rediscover }`, `{ kind: 'caught-up' }` or `{ kind: 'end' }`. Throws `'bad-discovery'` once
    /// everything else is read if some partitions can never start.
    #[wasm_bindgen(unchecked_return_type = "ScheduleStep")]
    pub fn poll(&mut self, now: f64) -> Result<Object, Error> {
        let step = Object::new();
        let kind = match self.core.poll(now.max(0.0) as u64).map_err(bad)? {
            Step::Read { index, .. } => {
                set(&step, "partition", &self.partitions.get(index as u32));
                "read"
            }
            Step::Wait { ms, rediscover } => {
                set(&step, "ms", &JsValue::from_f64(ms as f64));
                set(&step, "rediscover", &JsValue::from_bool(rediscover));
                "wait"
            }
            Step::CaughtUp => "caught-up",
            Step::End => "end",
        };
        set(&step, "kind", &JsValue::from_str(kind));
        Ok(step)
    }

    /// A batch of the current turn, from the reader's page `page`, with events or not. Returns whether the turn has
    /// used its pages: end it before the next read.
    #[wasm_bindgen(js_name = handleBatch)]
    pub fn handle_batch(&mut self, page: u32, events: bool) -> bool {
        self.core.handle_batch(page, events)
    }

    /// The turn of the partition last read ended at `now`, caught up (a page brought no events) or not.
    #[wasm_bindgen(js_name = handleTurnEnd)]
    pub fn handle_turn_end(&mut self, caught_up: bool, now: f64) {
        self.core.handle_turn_end(caught_up, now.max(0.0) as u64);
    }
}

/// The ids of `partitions` (a discovery's list) that a feed reading only `filter` (ids) reads: those ids and their
/// split children (an id listed twice is taken from its last entry). For the consumer groups (js/src/group/roots.ts).
#[wasm_bindgen(js_name = partitionScope, unchecked_return_type = "number[]")]
pub fn partition_scope(
    #[wasm_bindgen(unchecked_param_type = "readonly V2Partition[]")] partitions: JsValue,
    #[wasm_bindgen(unchecked_param_type = "number[]")] filter: JsValue,
) -> Array {
    let list = self::partitions(&partitions.dyn_into::<Array>().unwrap_or_default());
    let scope = schedule::partition_scope(&list, &Ids::new(&ids(&filter)));
    let out = Array::new();
    for (p, in_scope) in list.iter().zip(scope) {
        if in_scope {
            out.push(&JsValue::from(p.id));
        }
    }
    out
}
