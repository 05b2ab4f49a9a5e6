//! FeedAPI v2: which partition to read next. Pure state: no reader, no HTTP, no clock (`now` is passed in). The
//! TypeScript shell (js/src/source/v2.ts) opens one reader per turn that [`Schedule::poll`] names and reports how the
//! turn went; the wasm crate exposes this as the `Schedule` class.
//!
//! Rules (SPEC quotes in docs/feedapi-v2.md §6):
//! - **Scope**: with a filter (the caller's `partitions`), only those ids are read, plus the split children of a listed
//!   one (`startsAfterPartition` a partition in scope, or a `cursorFromPartitions` ancestor in the filter),
//!   transitively: [`partition_scope`].
//! - **Fair turns**: partitions due are read round robin, each for at most [`PAGES_PER_TURN`] pages per turn
//!   ([`Schedule::handle_batch`]), so a partition that always has new events cannot starve the others.
//! - **Closed and split**: a closed partition read to its end is finished; a child (`startsAfterPartition` P) is due
//!   only once P is finished ("First read all events from partition 0. Then, when that partition is fully consumed, it
//!   continues with the children"). A parent outside the scope is not waited for.
//! - **Rediscovery** (`409`): [`Schedule::plan`] re-plans from the new list. Every listed partition is read again from
//!   its delivered cursor (one that became closed is finished once read to its end, and then its children are due);
//!   only partitions finished while closed stay finished.
//! - **Impossible documents**: a child whose parent is listed but not closed ("It is not legal to set
//!   startsAfterPartition to point to a non-closed partition"), a parent cycle, or a descendant of either can never
//!   start. What can be read is read; then [`Schedule::poll`] fails naming why.
//! - **Caught up**: signalled once every partition in scope is caught up (after new events, again); without live
//!   polling the feed then ends, with it each caught-up partition is polled again the live interval later.
//!
//! Everything is linear in the size of the discovery document (a hostile list of 100,000 entries costs one pass).
//!
//! ```
//! use feedpump_core::schedule::{Partition, Schedule, Step};
//! let mut s = Schedule::new(None, None);
//! s.plan(&[Partition { id: 0, closed: true, ..Partition::default() }, Partition { id: 1, starts_after: Some(0), ..Partition::default() }]).unwrap();
//! assert_eq!(s.poll(0), Ok(Step::Read { id: 0, index: 0 }));
//! s.handle_turn_end(true, 0); // partition 0 read to its end: finished, its child is due
//! assert_eq!(s.poll(0), Ok(Step::Read { id: 1, index: 1 }));
//! s.handle_turn_end(true, 0);
//! assert_eq!(s.poll(0), Ok(Step::CaughtUp));
//! assert_eq!(s.poll(0), Ok(Step::End));
//! ```

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Pages a partition may read in one turn before the next partition due gets its turn.
pub const PAGES_PER_TURN: u32 = 4;

/// How many reasons a [`ScheduleError::Blocked`] names (the rest are counted).
const REASONS_SHOWN: usize = 5;
/// How many members of a cycle a reason names (the rest are counted).
const CYCLE_SHOWN: usize = 8;

/// One partition as discovery lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partition {
    /// SPEC: "integers in the range [0..32767]".
    pub id: u16,
    /// No new events will ever appear on it: read it to its end once.
    pub closed: bool,
    /// Split method 1: start this partition only once that (closed) partition has been read to its end.
    pub starts_after: Option<u16>,
    /// Split method 2: "A cursor that was valid on an ancestor is also valid on the child" (the scope only).
    pub cursor_from: Vec<u16>,
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read partition `id`, for one turn; `index` is its position in the list last planned.
    Read {
        /// The partition.
        id: u16,
        /// Its position in the list given to [`Schedule::plan`].
        index: usize,
    },
    /// Live: nothing is due; wait `ms` (then poll again; `rediscover`: make the discovery again first).
    Wait {
        /// How long, ms.
        ms: u64,
        /// Every partition in scope is finished: discover again (a new token may list new partitions).
        rediscover: bool,
    },
    /// Every partition in scope is caught up (signal it once).
    CaughtUp,
    /// Not live: everything is read.
    End,
}

/// Why a partition can never start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// SPEC: "It is not legal to set startsAfterPartition to point to a non-closed partition".
    ParentNotClosed {
        /// The child.
        id: u16,
        /// Its listed parent, which is not closed.
        parent: u16,
    },
    /// The partitions of a `startsAfterPartition` cycle, in the order of the cycle.
    Cycle {
        /// Its first members (up to 8).
        shown: Vec<u16>,
        /// How many members it has.
        len: usize,
    },
}

/// A discovery document the schedule cannot follow: the feed fails with `'bad-discovery'` and this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// A partition is listed twice (from [`Schedule::plan`], which then changes nothing).
    ListedTwice(u16),
    /// Some partitions can never start (from [`Schedule::poll`], once everything else is read).
    Blocked {
        /// The first reasons (up to 5).
        reasons: Vec<Reason>,
        /// How many reasons there are.
        count: usize,
    },
}

impl ScheduleError {
    /// The stable error code (`FeedError.code`).
    pub const fn code(&self) -> &'static str {
        "bad-discovery"
    }
}

fn join(f: &mut fmt::Formatter<'_>, ids: &[u16]) -> fmt::Result {
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{id}")?;
    }
    Ok(())
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ParentNotClosed { id, parent } => {
                write!(f, "partition {id} startsAfterPartition {parent}, which is not closed")
            }
            Reason::Cycle { shown, len } => {
                f.write_str("partitions ")?;
                join(f, shown)?;
                if *len > shown.len() {
                    write!(f, ", … ({len} in all)")?;
                }
                f.write_str(" form a startsAfterPartition cycle")
            }
        }
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::ListedTwice(id) => write!(f, "partition {id} is listed twice"),
            ScheduleError::Blocked { reasons, count } => {
                f.write_str("the discovery document can never be read to the end: ")?;
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{r}")?;
                }
                if *count > reasons.len() {
                    write!(f, "; and {} more", count - reasons.len())?;
                }
                Ok(())
            }
        }
    }
}

/// A set of partition ids (a bitset: ids are below 2^16, so at most 8 KB).
#[derive(Clone, Debug, Default)]
pub struct Ids(Vec<u64>);

impl Ids {
    /// The set of these ids.
    pub fn new(ids: impl IntoIterator<Item = u16>) -> Ids {
        let mut set = Ids(Vec::new());
        for id in ids {
            let word = usize::from(id / 64);
            if set.0.len() <= word {
                set.0.resize(word + 1, 0);
            }
            set.0[word] |= 1 << (id % 64);
        }
        set
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u16) -> bool {
        self.0.get(usize::from(id / 64)).is_some_and(|w| w >> (id % 64) & 1 == 1)
    }
}

/// How a chain step answers: by itself, or by the answer of another node (its parent).
enum Chain {
    Answer(bool),
    Follow(usize),
}

/// Decides a yes/no property that follows parent chains, for every node `0..n`, each node once (linear in `n`):
/// `step(ctx, i)` answers for node `i` by itself, or names the node it depends on; a chain that comes back to itself
/// answers `on_cycle(ctx, the nodes of the cycle)`. Every node walked takes the answer its chain ends in.
fn decide_chains<C>(
    n: usize,
    ctx: &mut C,
    step: impl Fn(&mut C, usize) -> Chain,
    on_cycle: impl Fn(&mut C, &[usize]) -> bool,
) -> Vec<bool> {
    // 0: not decided; 1: on the path being walked; 2: no; 3: yes.
    let mut state = vec![0u8; n];
    let mut path = Vec::new();
    for start in 0..n {
        let mut i = start;
        let answer = loop {
            match state[i] {
                2 => break false,
                3 => break true,
                1 => {
                    let from = path.iter().position(|&p| p == i).unwrap_or(0);
                    break on_cycle(ctx, &path[from..]);
                }
                _ => {}
            }
            state[i] = 1;
            path.push(i);
            match step(ctx, i) {
                Chain::Answer(a) => break a,
                Chain::Follow(next) if next < n => i = next,
                Chain::Follow(_) => break false,
            }
        };
        for p in path.drain(..) {
            state[p] = if answer { 3 } else { 2 };
        }
    }
    state.iter().map(|&s| s == 3).collect()
}

/// `slot[id]`: the position + 1 of partition `id` in `list` (0: not listed). Fails on an id listed twice.
fn slots(list: impl Iterator<Item = u16> + Clone) -> Result<Vec<u32>, ScheduleError> {
    let len = list.clone().map(|id| usize::from(id) + 1).max().unwrap_or(0);
    let mut slot = vec![0u32; len];
    for (i, id) in list.enumerate() {
        let s = &mut slot[usize::from(id)];
        if *s != 0 {
            return Err(ScheduleError::ListedTwice(id));
        }
        *s = i as u32 + 1;
    }
    Ok(slot)
}

fn position(slot: &[u32], id: u16) -> Option<usize> {
    slot.get(usize::from(id)).filter(|&&s| s != 0).map(|&s| s as usize - 1)
}

/// Which partitions of `list` a filter reads (per position of `list`): those in the filter, or with a
/// `cursorFromPartitions` ancestor in it, or whose `startsAfterPartition` is in scope (a listed parent) or in the
/// filter (an unlisted one). A cycle without a member in scope is not. An id listed twice is taken from its last entry
/// (as a map of the list by id would; [`Schedule::plan`] refuses such a list). Linear in the list. Also tells the
/// consumer groups which partitions a lease covers.
pub fn partition_scope(list: &[Partition], filter: &Ids) -> Vec<bool> {
    let len = list.iter().map(|p| usize::from(p.id) + 1).max().unwrap_or(0);
    let mut slot = vec![0u32; len];
    for (i, p) in list.iter().enumerate() {
        slot[usize::from(p.id)] = i as u32 + 1;
    }
    decide_chains(
        list.len(),
        &mut (),
        |_, i| {
            let p = &list[i];
            match position(&slot, p.id) {
                Some(last) if last != i => return Chain::Follow(last),
                _ => {}
            }
            if filter.contains(p.id) || p.cursor_from.iter().any(|&a| filter.contains(a)) {
                return Chain::Answer(true);
            }
            match p.starts_after {
                None => Chain::Answer(false),
                Some(parent) => match position(&slot, parent) {
                    Some(at) => Chain::Follow(at),
                    None => Chain::Answer(filter.contains(parent)),
                },
            }
        },
        |_, _| false,
    )
}

/// A partition in scope.
#[derive(Debug)]
struct Entry {
    id: u16,
    closed: bool,
    /// Its `startsAfterPartition`, when that is in scope: the parent a turn must wait for.
    parent: Option<u16>,
    /// Its position in the list planned (the shell's partition object).
    index: usize,
    /// Closed and read to its end. Kept across rediscovery while the partition is still listed closed.
    finished: bool,
    /// Children waiting for this partition to be finished, in list order.
    waiting: Vec<u16>,
}

/// The v2 plan of one feed.
#[derive(Debug)]
pub struct Schedule {
    /// The caller's `partitions`: read only these (and their split children). `None`: all.
    filter: Option<Ids>,
    /// Live: the wait before a caught-up partition is read again, ms. `None`: end once all are caught up.
    interval_ms: Option<u64>,
    /// The listed partitions in scope, in list order.
    entries: Vec<Entry>,
    /// `slot[id]`: the position + 1 of partition `id` in `entries` (0: not in scope). Ids are below 2^15 (SPEC), so
    /// a dense table (sized by the largest id listed) is both the smallest code and linear.
    slot: Vec<u32>,
    /// Partitions due, round robin.
    due: VecDeque<u16>,
    /// Live: caught-up partitions and when they are due again. The interval is fixed, so times only grow: a FIFO.
    resting: VecDeque<(u16, u64)>,
    /// Why some partitions can never start: the first few, and how many in all (0: none).
    blocked: Vec<Reason>,
    blocked_count: usize,
    /// The partition whose turn it is.
    reading: Option<u16>,
    /// The reader's page of the turn's first batch.
    turn_first_page: Option<u32>,
    /// The turn delivered events.
    delivered: bool,
    /// Caught up was signalled and nothing was delivered since.
    signalled: bool,
}

impl Schedule {
    /// A schedule reading `filter` (`None`: every partition), polling caught-up partitions again after
    /// `live_interval_ms` (`None`: not live, the feed ends once every partition is caught up). Nothing is due
    /// before [`Schedule::plan`].
    pub fn new(filter: Option<Ids>, live_interval_ms: Option<u64>) -> Schedule {
        Schedule {
            filter,
            interval_ms: live_interval_ms,
            entries: Vec::new(),
            slot: Vec::new(),
            due: VecDeque::new(),
            resting: VecDeque::new(),
            blocked: Vec::new(),
            blocked_count: 0,
            reading: None,
            turn_first_page: None,
            delivered: false,
            signalled: false,
        }
    }

    fn entry(&self, id: u16) -> Option<&Entry> {
        position(&self.slot, id).map(|i| &self.entries[i])
    }

    /// Plans from a (new) discovery's list. Fails, changing nothing, on a partition listed twice.
    pub fn plan(&mut self, list: &[Partition]) -> Result<(), ScheduleError> {
        slots(list.iter().map(|p| p.id))?;
        let scope = match &self.filter {
            Some(filter) => partition_scope(list, filter),
            None => vec![true; list.len()],
        };
        let in_scope = || list.iter().enumerate().filter(|&(i, _)| scope[i]).map(|(_, p)| p.id);
        let slot = slots(in_scope())?;
        let entries: Vec<Entry> = list
            .iter()
            .enumerate()
            .filter(|&(i, _)| scope[i])
            .map(|(index, p)| Entry {
                id: p.id,
                closed: p.closed,
                parent: p.starts_after.filter(|&a| position(&slot, a).is_some()),
                index,
                // Finished stays finished only while listed closed.
                finished: p.closed && self.entry(p.id).is_some_and(|e| e.finished),
                waiting: Vec::new(),
            })
            .collect();
        self.entries = entries;
        self.slot = slot;
        let blocked = self.find_blocked();
        self.due.clear();
        self.resting.clear();
        self.reading = None;
        for (i, &blocked) in blocked.iter().enumerate() {
            let e = &self.entries[i];
            if e.finished || blocked {
                continue;
            }
            let id = e.id;
            match e.parent.and_then(|a| position(&self.slot, a)) {
                Some(at) if !self.entries[at].finished => self.entries[at].waiting.push(id),
                _ => self.due.push_back(id),
            }
        }
        // Caught up is signalled again only if there is something to read (a live feed whose partitions are all
        // finished rediscovers at every interval: that is not news).
        if !self.due.is_empty() {
            self.signalled = false;
        }
        Ok(())
    }

    /// The partitions in scope that can never start (per position of `entries`); why goes into `blocked`.
    fn find_blocked(&mut self) -> Vec<bool> {
        /// The first reasons, and how many in all.
        fn add(found: &mut (Vec<Reason>, usize), r: Reason) {
            if found.1 < REASONS_SHOWN {
                found.0.push(r);
            }
            found.1 += 1;
        }
        let mut found = (Vec::new(), 0);
        let entries = &self.entries;
        let slot = &self.slot;
        let blocked = decide_chains(
            entries.len(),
            &mut found,
            |found, i| {
                let e = &entries[i];
                let Some(parent) = e.parent else { return Chain::Answer(false) };
                let at = position(slot, parent).unwrap_or(usize::MAX);
                if entries.get(at).is_some_and(|p| p.closed) {
                    return Chain::Follow(at);
                }
                add(found, Reason::ParentNotClosed { id: e.id, parent });
                Chain::Answer(true)
            },
            |found, cycle| {
                let shown = cycle.iter().take(CYCLE_SHOWN).map(|&i| entries[i].id).collect();
                add(found, Reason::Cycle { shown, len: cycle.len() });
                true
            },
        );
        (self.blocked, self.blocked_count) = found;
        blocked
    }

    /// The next step at `now` (ms, any monotonic clock). Fails once everything else is read if some partitions can
    /// never start.
    pub fn poll(&mut self, now: u64) -> Result<Step, ScheduleError> {
        // Resting partitions whose time came join the back of the queue (a hot partition cannot keep them out).
        while let Some(&(id, at)) = self.resting.front() {
            if at > now {
                break;
            }
            self.resting.pop_front();
            self.due.push_back(id);
        }
        if let Some(id) = self.due.pop_front() {
            self.reading = Some(id);
            self.turn_first_page = None;
            self.delivered = false;
            let index = self.entry(id).map_or(0, |e| e.index);
            return Ok(Step::Read { id, index });
        }
        // Nothing is due: every partition in scope is caught up, finished, waiting or blocked.
        if self.blocked_count > 0 {
            return Err(ScheduleError::Blocked { reasons: self.blocked.clone(), count: self.blocked_count });
        }
        if !self.signalled {
            self.signalled = true;
            return Ok(Step::CaughtUp);
        }
        let Some(interval) = self.interval_ms else { return Ok(Step::End) };
        Ok(match self.resting.front() {
            None => Step::Wait { ms: interval, rediscover: true },
            Some(&(_, at)) => Step::Wait { ms: at.saturating_sub(now), rediscover: false },
        })
    }

    /// A batch of the current turn, from the reader's page `page`, with events or not. Returns whether the turn has
    /// used its pages: it ends before the next read (a batch that starts page [`PAGES_PER_TURN`] + 1 of the turn is
    /// still handed out; the rest of that page is asked for again next turn). Without a turn, changes nothing.
    pub fn handle_batch(&mut self, page: u32, events: bool) -> bool {
        if self.reading.is_none() {
            return false;
        }
        self.delivered |= events;
        let first = *self.turn_first_page.get_or_insert(page);
        page.saturating_sub(first) >= PAGES_PER_TURN
    }

    /// The turn of the partition last returned by [`Schedule::poll`] ended at `now`, `caught_up` (a page brought no
    /// events: the partition is at its end for now) or not (its pages used, or cut by a 409: the re-plan that follows
    /// reads the partition again anyway). Without a turn (a second end, or after a re-plan), changes nothing.
    pub fn handle_turn_end(&mut self, caught_up: bool, now: u64) {
        let Some(id) = self.reading.take() else { return };
        if self.delivered {
            self.signalled = false;
        }
        if !caught_up {
            self.due.push_back(id);
            return;
        }
        let Some(at) = position(&self.slot, id) else { return };
        let e = &mut self.entries[at];
        if e.closed {
            e.finished = true;
            let children = core::mem::take(&mut e.waiting);
            self.due.extend(children);
        } else if let Some(interval) = self.interval_ms {
            self.resting.push_back((id, now.saturating_add(interval)));
        }
    }
}
