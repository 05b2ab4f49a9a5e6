//! Batches: what crosses into JavaScript, once per <= 64 KiB of input.
//!
//! A batch is one JSON array text of the events' values as they came, `[D1,H2,D2,…]`: each event's `data`, after
//! its `headers` when it has any. JavaScript parses it with a single `JSON.parse` (design (c') in PERFORMANCE.md) and
//! makes the event objects from the values and a small table ([`Batch::meta`]) that gives each event's partition,
//! whether it has headers, and where it came from (error messages, raw access). The envelope (`{"partition":P,…}`)
//! is not in the text: the parse makes no object for it and decodes no key of it, and there are fewer bytes to copy
//! and decode (bench/NOTES.md). With escapes off (raw mode, whose values are handed out as they came), the events
//! with text outside ASCII are in a second such text, [`Batch::wide`], so that the first stays ASCII.
//!
//! ## The committable rule
//! ZeroEventHub says a checkpoint resumes "right after everything that preceded it" in its partition, and that events
//! after the last checkpoint of a page are delivered again by the next page. So an event may only be handed out once
//! a checkpoint of its partition follows it: events are *held* per partition and *released* together with that
//! checkpoint; whatever is still held when the page ends is dropped and re-fetched. Every batch is therefore
//! committable as a whole, and its checkpoints are exactly the cursors to store with its events.
//! Order is kept within a partition; across partitions ZEH promises none.

mod text;

use crate::typefield::{type_at_hinted, TypeAt};
use crate::typefilter::TypeFilter;
use alloc::string::String;
use alloc::vec::Vec;
use text::{escapable, escaped, utf16_len, utf16_len_non_ascii};

/// Entries per event in [`Batch::meta`].
pub const META_STRIDE: usize = 6;

/// [`BatchBuilder::set_escape`]: escaping stops when more than this many of the last 32 kept events had text outside
/// ASCII (bench/NOTES.md: escaping every event still paid with half of them not ASCII, and cost 22-34% with all).
pub const ESCAPE_MOST: u32 = 24;
/// [`BatchBuilder::set_escape`]: once stopped, escaping starts again when this many or fewer of the last 32 had.
pub const ESCAPE_AGAIN: u32 = 16;

/// [`Batch::meta`] and [`Batch::types`] offsets at or above this one index [`Batch::wide`] (less this), not
/// [`Batch::text`]. Never an offset in `text`: a session's batches are far shorter ([`crate::session::MAX_LIMIT`]).
pub const WIDE: u32 = 1 << 31;

/// Entries per event in [`Batch::types`].
pub const TYPE_STRIDE: usize = 2;

/// What a held event costs besides its text, counted in [`BatchBuilder::held_bytes`] and so against the limit of
/// [`BatchBuilder::over_held_limit`]: its bookkeeping (seven `u32`). Without it a page of tiny events (`"data":0`,
/// two bytes of text each) held 15 times the limit in memory (33.5 million events, 2.9 GB of wasm memory under the
/// default 64 MiB), and past a limit of 128 MiB the wasm ran out of memory before the limit was reached.
pub const HELD_EVENT_BYTES: usize = core::mem::size_of::<[u32; 7]>();
/// [`Batch::types`]' start for an event without a type (no string at the path). Never a type string's start: the
/// type is inside a `data` object, so its contents start after at least `[{"k":"`.
pub const TYPE_ABSENT: u32 = 0;
/// [`Batch::types`]' start for an event whose type only a parse can tell (see [`crate::typefield`]).
pub const TYPE_UNKNOWN: u32 = 1;

/// A checkpoint released in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The partition.
    pub partition: u32,
    /// The cursor to send back as `cursor<partition>`.
    pub cursor: String,
}

/// A committable batch of events with the checkpoints that cover them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// A JSON array of the events' values, `H,D` for an event with headers and `D` for one without, `data` and
    /// `headers` copied verbatim from the wire. Always valid UTF-8: every line was checked, or was all ASCII. Bytes,
    /// not a `String`: what was checked is not checked again on the way out (JavaScript decodes it).
    pub text: Vec<u8>,
    /// With escapes off (raw mode, [`BatchBuilder::set_escape`]): a JSON array like `text` of the values of the events
    /// with text outside ASCII, which are then not in `text`; their offsets are [`WIDE`] + their offsets in it. So
    /// `text` stays ASCII, which JavaScript engines decode into a string several times faster (bench/NOTES.md).
    /// `[]` when there are none (and with escapes on).
    pub wide: Vec<u8>,
    /// [`META_STRIDE`] `u32` per event, offsets in `text` in UTF-16 code units (JavaScript string indices; for an
    /// event in `wide`, [`WIDE`] + offsets in it): the start of the event's values (its headers', or its data's when
    /// it has none) and the end of its data; its partition; the line number and byte offset of its line in the page
    /// body (saturated to `u32`); and the start of its data. So the event has headers exactly when its data does not
    /// start where its values do; the headers end one unit (the comma) before the data starts.
    pub meta: Vec<u32>,
    /// When the builder reads types ([`BatchBuilder::set_type_field`]), [`TYPE_STRIDE`] `u32` per event: the start
    /// and end in `text` (UTF-16 units; as in `meta` for an event in `wide`) of the contents of its type string (which
    /// holds no escape), or [`TYPE_ABSENT`] / [`TYPE_UNKNOWN`] twice. Empty otherwise.
    pub types: Vec<u32>,
    /// Checkpoints released in this batch, in arrival order.
    pub checkpoints: Vec<Checkpoint>,
    /// With a type filter ([`BatchBuilder::set_type_filter`]): pairs of `u32`, a partition and how many of its events
    /// this batch's checkpoints cover that the filter dropped (read, counted, never copied into `text`). A partition
    /// appears once per release, only when it dropped any.
    pub dropped: Vec<u32>,
    /// Whether `text` is all ASCII (always with escapes off; with escapes on, unless an event was held as it came):
    /// any decoder of ASCII (a `latin1` one) then gives its string.
    pub ascii: bool,
}

impl Batch {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.meta.len() / META_STRIDE
    }

    /// Whether the batch has no events (it may still carry checkpoints).
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }
}

/// Events of one partition waiting for a checkpoint.
#[derive(Debug, Default)]
struct Held {
    /// The partition number events and checkpoints of this slot carry.
    id: u32,
    /// The events' values (as in [`Batch::text`]) joined by `,`.
    text: Vec<u8>,
    /// Those of the events that go to [`Batch::wide`], joined by `,`.
    wide: Vec<u8>,
    /// Per event: start and end in `text` (UTF-16 units), line number, byte offset, start of `data`, and the two
    /// entries of [`Batch::types`] relative to `text` (or the markers); relative to `wide`, with [`WIDE`] set in
    /// the start, for an event there.
    events: Vec<[u32; 7]>,
    /// Length of `text` in UTF-16 code units.
    utf16: u32,
    /// Length of `wide` in UTF-16 code units.
    wide_utf16: u32,
    /// Events the type filter dropped since the last checkpoint: only counted, to be released with it.
    dropped: u32,
}

/// Appends a partition's held values, `units` long, to a released text (`[` and values joined by `,`, `out_units`
/// long); returns the offset in it where they start.
fn release(out: &mut Vec<u8>, out_units: &mut u32, held: &[u8], units: u32) -> u32 {
    if out.len() > 1 && !held.is_empty() {
        out.push(b',');
        *out_units += 1;
    }
    let base = *out_units;
    out.extend_from_slice(held);
    *out_units += units;
    base
}

fn sat(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// What the type filter makes of an event ([`BatchBuilder::sort_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sorted {
    /// Kept (or no filter), its type where the scan found it.
    Kept(TypeAt),
    /// Dropped: only counted.
    Dropped,
}

/// Builds batches from classified lines; see the module docs for the committable rule.
#[derive(Debug)]
pub struct BatchBuilder {
    held: Vec<Held>,
    out: Batch,
    /// Length of `out.text` in UTF-16 code units, the base for the next released event's offsets.
    out_utf16: u32,
    /// Length of `out.wide` in UTF-16 code units.
    out_wide_utf16: u32,
    held_bytes: usize,
    /// The most `held_bytes` may reach (see [`BatchBuilder::over_held_limit`]).
    max_held: usize,
    /// The path in `data` of each event's type; empty: types are not read.
    type_field: Vec<String>,
    /// Drops the events it does not keep (only with a `type_field`).
    type_filter: Option<TypeFilter>,
    /// Writes the characters outside ASCII of the held values as `\u` escapes ([`BatchBuilder::set_escape`]).
    escape: bool,
    /// One bit per kept event, the last one lowest: set when its values are not ASCII ([`BatchBuilder::set_escape`]).
    recent: u32,
    /// Whether events are escaped now (with `escape`; see [`ESCAPE_MOST`]).
    escaping: bool,
    /// Bytes of the cursors of `out.checkpoints`, bounded per batch as the event text is (see `Session::poll_batch`),
    /// so a filter that drops every event cannot grow a batch without bound.
    out_cursor_bytes: usize,
}

impl BatchBuilder {
    /// A builder for `partitions` partitions.
    pub fn new(partitions: u32) -> Self {
        Self::with_ids(0..partitions)
    }

    /// A builder whose slot `i` carries partition number `ids[i]` (FeedAPI v2 reads one partition, whose id is any
    /// number in `0..=32767`, through slot 0).
    pub fn with_ids(ids: impl IntoIterator<Item = u32>) -> Self {
        let mut b = BatchBuilder {
            held: ids.into_iter().map(|id| Held { id, ..Held::default() }).collect(),
            out: Batch::default(),
            out_utf16: 0,
            out_wide_utf16: 0,
            held_bytes: 0,
            max_held: usize::MAX,
            type_field: Vec::new(),
            type_filter: None,
            escape: false,
            recent: 0,
            escaping: true,
            out_cursor_bytes: 0,
        };
        b.reset_out();
        b
    }

    fn reset_out(&mut self) {
        self.out.text.clear();
        self.out.text.push(b'[');
        self.out.wide.clear();
        self.out.wide.push(b'[');
        self.out.meta.clear();
        self.out.types.clear();
        self.out.checkpoints.clear();
        self.out.dropped.clear();
        self.out_utf16 = 1;
        self.out_wide_utf16 = 1;
        self.out_cursor_bytes = 0;
    }

    /// Holds one event of slot `partition` until a checkpoint of it, or, when the type filter decides from its type
    /// that it is not kept, only counts it. `headers` and `data` are the raw JSON values. (The page's line handling
    /// calls the three steps itself, to decode only the events kept.)
    pub fn handle_event(&mut self, partition: u32, line: u64, offset: u64, headers: Option<&str>, data: &str) {
        match self.sort_event(data.as_bytes(), false) {
            Sorted::Dropped => self.handle_dropped(partition),
            Sorted::Kept(at) => {
                self.handle_kept(partition, line, offset, headers.map(str::as_bytes), data.as_bytes(), at, false)
            }
        }
    }

    /// What the type filter makes of an event, from its raw `data` (any bytes: the type filter reads only the
    /// type's, which it compares byte for byte): kept, with where its type is, or dropped. `single`: what the line
    /// scan found out about `data` while skipping it, that it holds no backslash and the quoted first key of the type
    /// field at most once (see [`crate::typefield::type_at_hinted`]; the line scanner watches
    /// [`BatchBuilder::watched_key`]). Changes nothing: the event is then given to [`BatchBuilder::handle_dropped`] or
    /// [`BatchBuilder::handle_kept`].
    pub fn sort_event(&self, data: &[u8], single: bool) -> Sorted {
        if self.type_field.is_empty() {
            return Sorted::Kept(TypeAt::Absent);
        }
        let at = type_at_hinted(data, &self.type_field, single);
        match self.type_filter.as_ref().and_then(|f| f.keeps(&at, data)) {
            Some(false) => Sorted::Dropped,
            _ => Sorted::Kept(at),
        }
    }

    /// Counts an event of slot `partition` that the type filter drops ([`BatchBuilder::sort_event`]).
    pub fn handle_dropped(&mut self, partition: u32) {
        if let Some(h) = self.held.get_mut(partition as usize) {
            h.dropped = h.dropped.saturating_add(1);
        }
    }

    /// Holds an event of slot `partition` that the type filter keeps (or without a filter), its type at `at` (from
    /// [`BatchBuilder::sort_event`]), until a checkpoint of it. `headers` and `data` are valid UTF-8: their line was
    /// checked, or is all ASCII. `ascii`: the caller knows them to be ASCII (their line is:
    /// [`crate::framing::Line::ascii`]); `false` leaves it to a pass over them here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_kept(
        &mut self,
        partition: u32,
        line: u64,
        offset: u64,
        headers: Option<&[u8]>,
        data: &[u8],
        at: TypeAt,
        ascii: bool,
    ) {
        let Some(h) = self.held.get_mut(partition as usize) else {
            return;
        };
        // Whether the values are ASCII (known from the line scan, or one pass here) decides how to count and, with
        // escapes (parsed mode), whether they are written escaped, or without (raw mode), whether they go to the
        // wide text.
        let ascii = ascii || (data.is_ascii() && headers.map_or(true, <[u8]>::is_ascii));
        let wide = !ascii && !self.escape;
        let (text, utf16, flag) =
            if wide { (&mut h.wide, &mut h.wide_utf16, WIDE) } else { (&mut h.text, &mut h.utf16, 0) };
        let before = text.len();
        if !text.is_empty() {
            text.push(b',');
            *utf16 += 1;
        }
        let start = *utf16;
        let values_start = text.len();
        if self.escape {
            self.recent = self.recent << 1 | u32::from(!ascii);
            let recent_wide = self.recent.count_ones();
            self.escaping = recent_wide <= if self.escaping { ESCAPE_MOST } else { ESCAPE_AGAIN };
            // (`text` is ASCII exactly when its bytes are as many as its UTF-16 units.)
            let text_ascii = text.len() == *utf16 as usize;
            if !ascii && self.escaping && text_ascii {
                if let (Some(headers), Some(data)) =
                    (headers.map_or(Some(None), |h| escapable(h).map(Some)), escapable(data))
                {
                    let data_at = escaped(text, headers, data);
                    let len = (text.len() - values_start) as u32;
                    // Where the type is in the escaped text is not worked out: the wrapper parses such an event to
                    // read it.
                    let types = if at == TypeAt::Absent { TYPE_ABSENT } else { TYPE_UNKNOWN };
                    h.events.push([start, start + len, sat(line), sat(offset), start + data_at, types, types]);
                    *utf16 += len;
                    self.held_bytes += text.len() - before + HELD_EVENT_BYTES;
                    return;
                }
            }
        }
        if let Some(headers) = headers {
            text.extend_from_slice(headers);
            text.push(b',');
        }
        // UTF-16 units: a byte each in ASCII text.
        let units = |b: &[u8]| if ascii { b.len() as u32 } else { utf16_len(b) };
        let data_start = start + units(&text[values_start..]);
        text.extend_from_slice(data);
        let [type_start, type_end] = match at {
            TypeAt::Absent => [TYPE_ABSENT; 2],
            TypeAt::Unknown => [TYPE_UNKNOWN; 2],
            TypeAt::At(r) => {
                let from = data_start + units(&data[..r.start]);
                [from, from + units(&data[r])]
            }
        };
        let added = &text[values_start..];
        if ascii {
            *utf16 += added.len() as u32;
        } else {
            *utf16 += utf16_len_non_ascii(added);
        }
        h.events.push([start | flag, *utf16, sat(line), sat(offset), data_start, type_start, type_end]);
        self.held_bytes += text.len() - before + HELD_EVENT_BYTES;
    }

    /// The key the line scanner watches for in each event's `data` (the type field's first; empty: none).
    pub fn watched_key(&self) -> &[u8] {
        self.type_field.first().map_or(b"", String::as_bytes)
    }

    /// Releases the held events of slot `partition` together with its checkpoint.
    pub fn handle_checkpoint(&mut self, partition: u32, cursor: String) {
        let Some(h) = self.held.get_mut(partition as usize) else {
            return;
        };
        let id = h.id;
        if !h.events.is_empty() {
            self.held_bytes -= h.text.len() + h.wide.len() + h.events.len() * HELD_EVENT_BYTES;
            let narrow = release(&mut self.out.text, &mut self.out_utf16, &h.text, h.utf16);
            let wide = WIDE + release(&mut self.out.wide, &mut self.out_wide_utf16, &h.wide, h.wide_utf16);
            let types = !self.type_field.is_empty();
            for [start, end, line, offset, data, type_start, type_end] in h.events.drain(..) {
                let base = if start & WIDE == 0 { narrow } else { wide };
                let start = start & !WIDE;
                self.out.meta.extend_from_slice(&[base + start, base + end, id, line, offset, base + data]);
                if types {
                    let shift = if type_start > TYPE_UNKNOWN { base } else { 0 };
                    self.out.types.extend_from_slice(&[type_start + shift, type_end + shift]);
                }
            }
            h.text.clear();
            h.wide.clear();
            h.utf16 = 0;
            h.wide_utf16 = 0;
        }
        if h.dropped > 0 {
            self.out.dropped.extend_from_slice(&[id, h.dropped]);
            h.dropped = 0;
        }
        self.out_cursor_bytes += cursor.len();
        self.out.checkpoints.push(Checkpoint { partition: id, cursor });
    }

    /// Events of `partition` waiting for a checkpoint, with those the type filter dropped (only counted).
    pub fn held_events(&self, partition: u32) -> usize {
        self.held.get(partition as usize).map_or(0, |h| h.events.len() + h.dropped as usize)
    }

    /// Bytes of event text released and not yet taken.
    pub fn released_bytes(&self) -> usize {
        self.out.text.len() + self.out.wide.len() - 2
    }

    /// Bytes of the cursors released and not yet taken.
    pub fn released_cursor_bytes(&self) -> usize {
        self.out_cursor_bytes
    }

    /// Whether released checkpoints wait to be taken.
    pub fn has_checkpoints(&self) -> bool {
        !self.out.checkpoints.is_empty()
    }

    /// Bytes held back waiting for checkpoints: the events' text, and [`HELD_EVENT_BYTES`] per event.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Reads each event's type from the string at `path` in its `data` into [`Batch::types`] (see
    /// [`crate::typefield`]); an empty path (the default) reads none.
    pub fn set_type_field(&mut self, path: Vec<String>) {
        self.type_field = path;
    }

    /// Drops the events whose type (read at the type field: without one, this does nothing) `filter` does not keep;
    /// they are counted in [`Batch::dropped`] when their checkpoint releases them (see [`crate::typefilter`]).
    pub fn set_type_filter(&mut self, filter: Option<TypeFilter>) {
        self.type_filter = filter;
    }

    /// Whether the batch text writes each character outside ASCII of an event's values as a JSON `\u` escape (two for
    /// one outside the BMP; off by default). The text then parses to the same values and is pure ASCII, which
    /// JavaScript engines decode into a string several times faster than text with any other character (a one-byte
    /// string; bench/NOTES.md), but it is no longer the server's bytes: the wrapper's parsed mode sets it, raw mode,
    /// whose `raw` is the value as the server sent it, does not. The escaped text is what is held and counted.
    ///
    /// It pays while such events are few: one of them makes a whole batch text slow to decode. Where most events have
    /// text outside ASCII the batches are slow to decode anyway, and escaping only costs (bench/NOTES.md), so escaping
    /// stops when more than [`ESCAPE_MOST`] of the last 32 kept events were not ASCII, and starts again at
    /// [`ESCAPE_AGAIN`] or fewer (not at the same mark: half-escaped batches pay both costs); nor is an event escaped
    /// after one of its partition held as it came (their batch is slow to decode anyway). An event with a character
    /// outside ASCII right after an escaping backslash (`"\é"`, not JSON) is kept as it came: escaped it
    /// would read as a valid `\\` escape.
    pub fn set_escape(&mut self, escape: bool) {
        self.escape = escape;
    }

    /// Sets the limit [`BatchBuilder::over_held_limit`] checks (unlimited by default).
    pub fn set_max_held(&mut self, bytes: usize) {
        self.max_held = bytes;
    }

    /// Whether the events held back for want of a checkpoint exceed the limit: they cannot be released without one,
    /// so holding more would only grow memory with the page.
    pub fn over_held_limit(&self) -> bool {
        self.held_bytes > self.max_held
    }

    /// Takes the released events and checkpoints as a batch, or `None` if nothing was released.
    pub fn take(&mut self) -> Option<Batch> {
        if self.out.meta.is_empty() && self.out.checkpoints.is_empty() {
            return None;
        }
        // (ASCII exactly when its bytes are as many as its UTF-16 units.)
        self.out.ascii = self.out.text.len() == self.out_utf16 as usize;
        self.out.text.push(b']');
        self.out.wide.push(b']');
        let mut batch = Batch {
            text: Vec::with_capacity(self.out.text.capacity()),
            wide: Vec::new(),
            meta: Vec::new(),
            types: Vec::new(),
            checkpoints: Vec::new(),
            dropped: Vec::new(),
            ascii: false,
        };
        core::mem::swap(&mut batch, &mut self.out);
        self.reset_out();
        Some(batch)
    }

    /// Drops every held event (end of page: they will be fetched again from the last checkpoint). Returns how many.
    pub fn drop_held(&mut self) -> usize {
        let mut dropped = 0;
        for h in &mut self.held {
            dropped += h.events.len() + h.dropped as usize;
            h.dropped = 0;
            h.events.clear();
            h.text.clear();
            h.wide.clear();
            h.utf16 = 0;
            h.wide_utf16 = 0;
        }
        self.held_bytes = 0;
        dropped
    }
}

#[cfg(test)]
mod tests;
