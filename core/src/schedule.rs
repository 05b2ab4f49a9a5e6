//! FeedAPI v2: which partition to read next. Pure state: no reader, no HTTP, no clock (`now` is passed in). The
//! TypeScript shell (js/src/source/v2.ts) opens one reader per turn that [`Schedule::poll`] names and reports how the
//! turn went; the wasm crate exposes this as the `Schedule` class.
//!
//! Rules (SPEC quotes in docs/feedapi-v2.md §6):
//! - **Scope**: with a filter (the caller's `partitions`), only those ids are read, plus the split children of a listed
//!   one (`startsAfterPartition` a partition in scope, or a `cursorFromPartitions` ancestor in the filter),
//!   transitively: [`partition_scope`].
//! - **Fair turns**: partitions due are read round robin, each for at most [`PAGES_PER_TURN`] pages per turn, or
//!   [`BATCHES_PER_TURN`] batches while another partition waits ([`Schedule::handle_batch`]), so a partition that
//!   always has new events cannot starve the others, even with a page that never ends, nor one that brings only
//!   heartbeats for ever (the reader's empty outputs count as batches).
//! - **Where a round starts**: a plan's first turn goes to the partition due at the position the shell gives
//!   ([`Schedule::new`]'s `start`; random, once per feed), modulo the partitions due, not always to the first listed:
//!   runs shorter than one turn (`maxBatches`, a time budget), each a new feed, would otherwise read only the first
//!   partition while it always has news, for ever. The position moves on by one at every turn, so a re-plan goes on
//!   with the partition after the last one read (a list unchanged, every partition still due) rather than from the
//!   first listed again (a 409 storm, a failover that rediscovers after every turn). Only the partitions due are
//!   rotated: a child still waiting for its parent is not among them, so the order rules hold.
//! - **Closed and split**: a closed partition read to its end is finished; a child (`startsAfterPartition` P) is due
//!   only once P is finished ("First read all events from partition 0. Then, when that partition is fully consumed, it
//!   continues with the children"). A parent outside the scope is not waited for. A method-2 child (no
//!   `startsAfterPartition`) whose `cursorFromPartitions` names a partition still listed closed waits for the first
//!   such one in the same way: it starts from that ancestor's cursor, so the ancestor must be read to its end first.
//! - **Rediscovery** (`409`): [`Schedule::plan`] re-plans from the new list. Every listed partition is read again from
//!   its delivered cursor (one that became closed is finished once read to its end, and then its children are due),
//!   except those still caught up: a partition finished while closed stays finished while listed closed, one caught
//!   up while open stays caught up (live: resting until its time) while listed open. A server whose token changes
//!   every few requests would otherwise keep a feed that is not live from ever ending (every 409 made every partition
//!   due again, and each answered request reset the retry budget), and make a live one poll every caught-up
//!   partition as fast as the retry policy allows instead of at the live interval.
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
//! let mut s = Schedule::new(None, None, 0);
//! s.plan(&[Partition { id: 0, closed: true, ..Partition::default() }, Partition { id: 1, starts_after: Some(0), ..Partition::default() }]).unwrap();
//! assert_eq!(s.poll(0), Ok(Step::Read { id: 0, index: 0 }));
//! s.handle_turn_end(true, 0); // partition 0 read to its end: finished, its child is due
//! assert_eq!(s.poll(0), Ok(Step::Read { id: 1, index: 1 }));
//! s.handle_turn_end(true, 0);
//! assert_eq!(s.poll(0), Ok(Step::CaughtUp));
//! assert_eq!(s.poll(0), Ok(Step::End));
//! ```

use crate::retry::MAX_TIMER_MS;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Pages a partition may read in one turn before the next partition due gets its turn.
pub const PAGES_PER_TURN: u32 = 4;
/// Batches (of at most 64 KiB each) a partition may read in one turn while another partition waits: the bound of a
/// turn whose page never ends (a server streaming one partition). The page is then cut, and read again from the
/// delivered cursor next turn (every batch ends at a checkpoint, so nothing is lost or repeated). The reader's empty
/// outputs count too: a piece of body that brought only lines to skip (a long-poll's heartbeats, blank lines; see
/// [`crate::driver`]) is one, so a page that brings only those for ever is cut as well (it passed no checkpoint: the
/// partition's cursor is where the turn started). Alone, a partition is never cut: a live long-poll goes on.
pub const BATCHES_PER_TURN: u32 = 64;

/// How many reasons a [`ScheduleError::Blocked`] names (the rest are counted).
const REASONS_SHOWN: u32 = 5;
/// How many members of a cycle a reason names (the rest are counted).
const CYCLE_SHOWN: usize = 8;
/// No node (a link, a list position).
const NONE: u32 = u32::MAX;
/// A node that answers yes by itself (a link).
const YES: u32 = u32::MAX - 1;

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

/// A discovery document the schedule cannot follow: the feed fails with `'bad-discovery'` and this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// A partition is listed twice (from [`Schedule::plan`], which then changes nothing).
    ListedTwice(u16),
    /// Some partitions can never start (from [`Schedule::poll`], once everything else is read): why, the first 5
    /// reasons (a child of a listed parent that is not closed, SPEC: "It is not legal to set startsAfterPartition to
    /// point to a non-closed partition"; a `startsAfterPartition` cycle, by its members) and how many more.
    Blocked(String),
}

impl ScheduleError {
    /// The stable error code (`FeedError.code`).
    pub const fn code(&self) -> &'static str {
        "bad-discovery"
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::ListedTwice(id) => write!(f, "partition {} is listed twice", u32::from(*id)),
            ScheduleError::Blocked(why) => write!(f, "the discovery document can never be read to the end: {why}"),
        }
    }
}

/// A set of partition ids (a bitset of every u16: 8 KB).
#[derive(Clone, Debug)]
pub struct Ids(Vec<u64>);

impl Ids {
    /// The set of these ids.
    pub fn new(ids: &[u16]) -> Ids {
        let mut set = vec![0u64; 1024];
        for &id in ids {
            set[usize::from(id / 64)] |= 1 << (id % 64);
        }
        Ids(set)
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u16) -> bool {
        self.0[usize::from(id / 64)] >> (id % 64) & 1 == 1
    }
}

/// Decides a yes/no property that follows parent chains, for every node, each node once (linear in the nodes):
/// `links[i]` is node `i`'s own answer (`YES`, `NONE`: no) or the node whose answer it takes. `event(false, [i])`
/// is called when node `i` answers yes by itself; a chain that comes back to itself answers `event(true, the nodes of
/// the cycle)`. Every node walked takes the answer its chain ends in: `3` (yes) or `2` (no) in the result. (One
/// function for both uses, through `dyn`: the smallest code.)
fn decide_chains(links: &[u32], event: &mut dyn FnMut(bool, &[usize]) -> bool) -> Vec<u8> {
    // 0: not decided; 1: on the path being walked; 2: no; 3: yes.
    let mut state = vec![0u8; links.len()];
    let mut path = Vec::new();
    for start in 0..links.len() {
        let mut i = start;
        let answer = loop {
            match state[i] {
                0 => {}
                1 => {
                    let from = path.iter().position(|&p| p == i).unwrap_or(0);
                    break event(true, &path[from..]);
                }
                decided => break decided == 3,
            }
            state[i] = 1;
            path.push(i);
            match links[i] {
                YES => {
                    event(false, &[i]);
                    break true;
                }
                next if (next as usize) < links.len() => i = next as usize,
                _ => break false,
            }
        };
        for &p in &path {
            state[p] = 2 + u8::from(answer);
        }
        path.clear();
    }
    state
}

/// `slot[id]`: the position + 1 in the list of the last entry of partition `id` (0: not listed), sized by the largest
/// id, and the first id listed twice, if any.
fn slots(list: &[Partition]) -> (Vec<u32>, Option<u16>) {
    let mut slot = Vec::new();
    let mut twice = None;
    for (i, p) in list.iter().enumerate() {
        let at = usize::from(p.id);
        if slot.len() <= at {
            slot.resize(at + 1, 0);
        }
        if slot[at] != 0 && twice.is_none() {
            twice = Some(p.id);
        }
        slot[at] = i as u32 + 1;
    }
    (slot, twice)
}

/// The position in the list of partition `id` (`NONE`: not listed).
fn position(slot: &[u32], id: u16) -> u32 {
    slot.get(usize::from(id)).map_or(NONE, |&s| s.wrapping_sub(1))
}

/// [`partition_scope`] over the list's `slots`: 3 for a position in scope.
fn scope(list: &[Partition], slot: &[u32], filter: &Ids) -> Vec<u8> {
    let mut links = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let last = position(slot, p.id);
        links.push(if last != i as u32 {
            last
        } else if filter.contains(p.id) || p.cursor_from.iter().any(|&a| filter.contains(a)) {
            YES
        } else {
            match p.starts_after {
                None => NONE,
                Some(parent) => match position(slot, parent) {
                    NONE if filter.contains(parent) => YES,
                    at => at,
                },
            }
        });
    }
    decide_chains(&links, &mut |_, _| false)
}

/// Which partitions of `list` a filter reads (per position of `list`): those in the filter, or with a
/// `cursorFromPartitions` ancestor in it, or whose `startsAfterPartition` is in scope (a listed parent) or in the
/// filter (an unlisted one). A cycle without a member in scope is not. An id listed twice is taken from its last entry
/// (as a map of the list by id would; [`Schedule::plan`] refuses such a list). Linear in the list. Also tells the
/// consumer groups which partitions a lease covers.
pub fn partition_scope(list: &[Partition], filter: &Ids) -> Vec<bool> {
    scope(list, &slots(list).0, filter).into_iter().map(|s| s == 3).collect()
}

/// A listed partition.
#[derive(Debug)]
struct Entry {
    id: u16,
    closed: bool,
    /// Read by this feed (the filter's scope).
    in_scope: bool,
    /// The position of its `startsAfterPartition`, when that is in scope: the parent a turn must wait for (`NONE`:
    /// none).
    parent: u32,
    /// Closed and read to its end. Kept across rediscovery while the partition is still listed closed.
    finished: bool,
    /// Caught up while open (0: not): live, when it is due again (it rests, in `resting`); not live, `u64::MAX` (it
    /// is not read again). Kept across rediscovery while the partition is still listed open, so that a 409 does not
    /// make every caught-up partition due at once (a server answering 409 every few requests would otherwise keep
    /// a feed that is not live from ever ending, and a live one polling as fast as the retry policy allows).
    rest_until: u64,
    /// Children waiting for this partition to be finished, in list order: a list through `next` (positions;
    /// `NONE`: none), so a plan allocates nothing per partition.
    first_waiting: u32,
    last_waiting: u32,
    next: u32,
}

/// The v2 plan of one feed.
#[derive(Debug)]
pub struct Schedule {
    /// The caller's `partitions`: read only these (and their split children). `None`: all.
    filter: Option<Ids>,
    /// Live: the wait before a caught-up partition is read again, ms. `None`: end once all are caught up.
    interval_ms: Option<u64>,
    /// The partitions listed, in list order (a position here is one in the list planned).
    entries: Vec<Entry>,
    /// `slot[id]`: the position + 1 of partition `id` in `entries` (0: not listed). Ids are below 2^15 (SPEC), so a
    /// dense table (sized by the largest id listed) is both the smallest code and linear.
    slot: Vec<u32>,
    /// Partitions due, round robin (positions).
    due: VecDeque<u32>,
    /// Live: caught-up partitions (positions), until their `rest_until`. The interval is fixed, so those times only
    /// grow: a FIFO.
    resting: VecDeque<u32>,
    /// Why some partitions can never start (`None`: none).
    blocked: Option<String>,
    /// The position of the partition whose turn it is.
    reading: Option<u32>,
    /// The reader's page of the turn's first batch.
    turn_first_page: Option<u32>,
    /// Batches of the turn so far.
    turn_batches: u32,
    /// The turn delivered events.
    delivered: bool,
    /// Caught up was signalled and nothing was delivered since.
    signalled: bool,
    /// Where a plan's round starts among the partitions due (modulo their count): the shell's `start`, plus one for
    /// every turn since.
    start: u32,
}

impl Schedule {
    /// A schedule reading `filter` (`None`: every partition), polling caught-up partitions again after
    /// `live_interval_ms` (`None`: not live, the feed ends once every partition is caught up; at most
    /// [`MAX_TIMER_MS`] takes effect, so every wait fits a timer), with the first round of the first plan starting at
    /// the partition due at position `start` (modulo their count; the shell passes a random number, so that the
    /// first turn of a new feed goes to any partition due alike). Nothing is due before [`Schedule::plan`].
    pub fn new(filter: Option<Ids>, live_interval_ms: Option<u64>, start: u32) -> Schedule {
        Schedule {
            filter,
            interval_ms: live_interval_ms.map(|ms| ms.min(MAX_TIMER_MS)),
            entries: Vec::new(),
            slot: Vec::new(),
            due: VecDeque::new(),
            resting: VecDeque::new(),
            blocked: None,
            reading: None,
            turn_first_page: None,
            turn_batches: 0,
            delivered: false,
            signalled: false,
            start,
        }
    }

    /// Plans from a (new) discovery's list: its round starts at the partition due at the schedule's start position
    /// (see [`Schedule::new`]), then goes on in list order. Fails, changing nothing, on a partition listed twice.
    pub fn plan(&mut self, list: &[Partition]) -> Result<(), ScheduleError> {
        let (slot, twice) = slots(list);
        if let Some(id) = twice {
            return Err(ScheduleError::ListedTwice(id));
        }
        let scope = self.filter.as_ref().map(|filter| scope(list, &slot, filter));
        let in_scope = |i: u32| scope.as_ref().map_or(true, |s| s.get(i as usize) == Some(&3));
        let mut entries = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            // A method-2 child whose ancestor is still listed closed (a publisher mid-split) starts from that
            // ancestor's cursor: it waits for the ancestor to be read to its end, as a method-1 child does.
            let parent = p
                .starts_after
                .or_else(|| {
                    p.cursor_from
                        .iter()
                        .copied()
                        .find(|&a| a != p.id && list.get(position(&slot, a) as usize).is_some_and(|a| a.closed))
                })
                .map_or(NONE, |a| position(&slot, a));
            let before = self.entry(p.id);
            entries.push(Entry {
                id: p.id,
                closed: p.closed,
                in_scope: in_scope(i as u32),
                parent: if in_scope(parent) { parent } else { NONE },
                // Finished stays finished only while listed closed; caught up (resting), only while listed open.
                finished: p.closed && in_scope(i as u32) && before.is_some_and(|e| e.finished),
                // (A closed partition never rests: read to its end, it is finished.)
                rest_until: if p.closed { 0 } else { before.map_or(0, |e| e.rest_until) },
                first_waiting: NONE,
                last_waiting: NONE,
                next: NONE,
            });
        }
        self.entries = entries;
        self.resting.clear();
        self.slot = slot;
        let blocked = self.find_blocked();
        self.due.clear();
        self.reading = None;
        for (i, blocked) in blocked.into_iter().enumerate() {
            let e = &mut self.entries[i];
            let rest = core::mem::take(&mut e.rest_until);
            if !e.in_scope || e.finished || blocked == 3 {
                continue;
            }
            let at = e.parent as usize;
            match self.entries.get_mut(at) {
                Some(parent) if !parent.finished => {
                    let last = core::mem::replace(&mut parent.last_waiting, i as u32);
                    match self.entries.get_mut(last as usize) {
                        Some(sibling) => sibling.next = i as u32,
                        None => self.entries[at].first_waiting = i as u32,
                    }
                }
                // Still caught up: it is not read again (not live), or rests on (live). The queue is rebuilt in list
                // order, so it may not be in time order until its partitions were read once: one whose time came
                // waits for those before it, less than an interval.
                _ if rest != 0 => {
                    self.entries[i].rest_until = rest;
                    if self.interval_ms.is_some() {
                        self.resting.push_back(i as u32);
                    }
                }
                _ => self.due.push_back(i as u32),
            }
        }
        // The round starts at `start`: a rotation of the partitions due only (a child waiting for its parent joins the
        // queue when the parent is finished, behind the others, as without it).
        for _ in 0..(self.start as usize).checked_rem(self.due.len()).unwrap_or(0) {
            if let Some(at) = self.due.pop_front() {
                self.due.push_back(at);
            }
        }
        // Caught up is signalled again only if there is something to read (a live feed whose partitions are all
        // finished rediscovers at every interval: that is not news).
        if !self.due.is_empty() {
            self.signalled = false;
        }
        Ok(())
    }

    fn entry(&self, id: u16) -> Option<&Entry> {
        self.entries.get(position(&self.slot, id) as usize)
    }

    /// The partitions in scope that can never start (3 per position); why goes into `blocked`.
    fn find_blocked(&mut self) -> Vec<u8> {
        let entries = &self.entries;
        let mut links = Vec::with_capacity(entries.len());
        for e in entries {
            links.push(match entries.get(e.parent as usize) {
                None => NONE,
                Some(p) if p.closed => e.parent,
                Some(_) => YES,
            });
        }
        let mut why = String::new();
        let mut count = 0u32;
        // Writing to a String cannot fail.
        let blocked = decide_chains(&links, &mut |cycle, nodes| {
            count += 1;
            if count > REASONS_SHOWN {
                return true;
            }
            if count > 1 {
                why.push_str("; ");
            }
            if cycle {
                why.push_str("partitions ");
                for (k, &i) in nodes.iter().take(CYCLE_SHOWN).enumerate() {
                    let _ = write!(why, "{}{}", if k > 0 { ", " } else { "" }, u32::from(entries[i].id));
                }
                if nodes.len() > CYCLE_SHOWN {
                    let _ = write!(why, ", … ({} in all)", nodes.len() as u32);
                }
                why.push_str(" form a startsAfterPartition cycle");
            } else {
                let e = &entries[nodes[0]];
                let parent = u32::from(entries[e.parent as usize].id);
                let _ = write!(why, "partition {} startsAfterPartition {parent}, which is not closed", u32::from(e.id));
            }
            true
        });
        if count > REASONS_SHOWN {
            let _ = write!(why, "; and {} more", count - REASONS_SHOWN);
        }
        self.blocked = (count > 0).then_some(why);
        blocked
    }

    /// The next step at `now` (ms, any monotonic clock). Fails once everything else is read if some partitions can
    /// never start.
    pub fn poll(&mut self, now: u64) -> Result<Step, ScheduleError> {
        // Resting partitions whose time came join the back of the queue (a hot partition cannot keep them out).
        while let Some(&at) = self.resting.front() {
            if self.entries[at as usize].rest_until > now {
                break;
            }
            self.resting.pop_front();
            self.entries[at as usize].rest_until = 0;
            self.due.push_back(at);
        }
        if let Some(at) = self.due.pop_front() {
            self.start = self.start.wrapping_add(1);
            self.reading = Some(at);
            self.turn_first_page = None;
            self.turn_batches = 0;
            self.delivered = false;
            return Ok(Step::Read { id: self.entries[at as usize].id, index: at as usize });
        }
        // Nothing is due: every partition in scope is caught up, finished, waiting or blocked.
        if let Some(why) = &self.blocked {
            return Err(ScheduleError::Blocked(why.clone()));
        }
        if !self.signalled {
            self.signalled = true;
            return Ok(Step::CaughtUp);
        }
        let Some(interval) = self.interval_ms else { return Ok(Step::End) };
        Ok(match self.resting.front() {
            None => Step::Wait { ms: interval, rediscover: true },
            Some(&at) => Step::Wait { ms: self.entries[at as usize].rest_until.saturating_sub(now), rediscover: false },
        })
    }

    /// A batch of the current turn, from the reader's page `page`, with events or not. Returns whether the turn has
    /// used its pages, or its batches while another partition waits (due, or resting until a live poll): it ends
    /// before the next read (a batch that starts page [`PAGES_PER_TURN`] + 1 of the turn, or batch
    /// [`BATCHES_PER_TURN`] + 1, is still handed out; the rest of that page is asked for again next turn). Without a
    /// turn, changes nothing.
    pub fn handle_batch(&mut self, page: u32, events: bool) -> bool {
        if self.reading.is_none() {
            return false;
        }
        self.delivered |= events;
        self.turn_batches = self.turn_batches.saturating_add(1);
        let first = *self.turn_first_page.get_or_insert(page);
        let waits = !(self.due.is_empty() && self.resting.is_empty());
        page.saturating_sub(first) >= PAGES_PER_TURN || (waits && self.turn_batches > BATCHES_PER_TURN)
    }

    /// The turn of the partition last returned by [`Schedule::poll`] ended at `now`, `caught_up` (a page brought no
    /// events: the partition is at its end for now) or not (its pages used, or cut by a 409: the re-plan that follows
    /// reads the partition again anyway). Without a turn (a second end, or after a re-plan), changes nothing.
    pub fn handle_turn_end(&mut self, caught_up: bool, now: u64) {
        let Some(at) = self.reading.take() else { return };
        if self.delivered {
            self.signalled = false;
        }
        if !caught_up {
            self.due.push_back(at);
            return;
        }
        let e = &mut self.entries[at as usize];
        if e.closed {
            e.finished = true;
            let mut child = e.first_waiting;
            while let Some(c) = self.entries.get(child as usize) {
                self.due.push_back(child);
                child = c.next;
            }
        } else {
            e.rest_until = u64::MAX;
            if let Some(interval) = self.interval_ms {
                e.rest_until = now.saturating_add(interval);
                self.resting.push_back(at);
            }
        }
    }
}
