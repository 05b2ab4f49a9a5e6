//! The bookkeeping of one page's body, line by line: which lines are events and checkpoints, events held per partition
//! until a checkpoint releases them ([`crate::batch`]), and checkpoints checked against the cursors each partition
//! already passed ([`crate::passed`]): a checkpoint that would move a partition back is `cursor-regressed`.

use crate::batch::{BatchBuilder, Sorted};
use crate::cursor::CursorSet;
use crate::error::{ErrorKind, ProtocolError};
use crate::framing::Line;
use crate::line::{classify_v1_watching, classify_v2_watching, LineKind};
use crate::passed::PassedCursors;
use crate::session::Protocol;

/// Counters of the current page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Events read (released or held).
    pub events: u64,
    /// Events released in batches.
    pub released: u64,
    /// Checkpoint lines read.
    pub checkpoints: u64,
    /// Lines of no known kind, ignored.
    pub ignored: u64,
}

/// Takes one line of the page body: an event is held in `builder` until a checkpoint of its partition; a checkpoint
/// releases them, moves `cursors` and is checked against the cursors the partition `passed` (it must not move back).
pub(crate) fn handle_line(
    line: Line<'_>,
    protocol: &Protocol,
    builder: &mut BatchBuilder,
    cursors: &mut CursorSet,
    stats: &mut PageStats,
    passed: &mut [PassedCursors],
) -> Result<(), ProtocolError> {
    // The line must be UTF-8, unless it is an event the type filter drops (never decoded, as its JSON is never
    // parsed: the README's section on filters). When the line is also malformed, invalid UTF-8 is the error reported.
    let utf8 = || {
        core::str::from_utf8(line.bytes).map_err(|e| {
            ProtocolError::new(ErrorKind::InvalidUtf8, "line is not valid UTF-8")
                .at(line.number, line.offset + e.valid_up_to() as u64)
        })
    };
    // The scan that skips each event's `data` also watches for the type field's key (see `type_at_hinted`).
    let watch = builder.watched_key();
    let classified = match protocol {
        Protocol::V1(_) => classify_v1_watching(line.bytes, cursors.len(), watch),
        // One partition per request: no `partition` on the lines.
        Protocol::V2(_) => classify_v2_watching(line.bytes, watch),
    };
    let (kind, seen) = match classified {
        Ok(classified) => classified,
        Err(e) => {
            utf8()?;
            return Err(ProtocolError { line: line.number, offset: line.offset, ..e });
        }
    };
    let sorted = match &kind {
        LineKind::Event { data, .. } => Some(builder.sort_event(&line.bytes[data.clone()], seen.single)),
        _ => None,
    };
    // A line that is all ASCII (the framing's newline search saw it) is valid UTF-8 as it is.
    if !line.ascii && sorted != Some(Sorted::Dropped) {
        utf8()?;
    }
    if let (Protocol::V1(v1), LineKind::Event { partition, .. } | LineKind::Checkpoint { partition, .. }) =
        (protocol, &kind)
    {
        if !v1.reads(*partition) {
            return Err(ProtocolError::new(ErrorKind::BadPartition, "line is for a partition that was not requested")
                .at(line.number, line.offset)
                .in_partition(*partition));
        }
    }
    match kind {
        LineKind::Event { partition, data, headers } => {
            stats.events += 1;
            let Some(Sorted::Kept(at)) = sorted else {
                builder.handle_dropped(partition);
                return Ok(());
            };
            // The scanner's spans end at ASCII delimiters, so the values are valid UTF-8 as the line is; `get` keeps
            // slicing's panic path (and its formatting code) out of the wasm.
            let span = |r| {
                line.bytes
                    .get(r)
                    .ok_or_else(|| ProtocolError::new(ErrorKind::BadLine, "bad span").at(line.number, line.offset))
            };
            let headers = headers.map(span).transpose()?;
            builder.handle_kept(partition, line.number, line.offset, headers, span(data)?, at, line.ascii);
            if builder.over_held_limit() {
                return Err(ProtocolError::new(
                    ErrorKind::NoProgress,
                    "the events held back waiting for a checkpoint exceed maxHeldBytes (they cannot be delivered without one)",
                )
                .at(line.number, line.offset)
                .in_partition(partition));
            }
        }
        LineKind::Checkpoint { partition, cursor } => {
            stats.checkpoints += 1;
            let held = builder.held_events(partition);
            let seen = &mut passed[partition as usize];
            // A checkpoint that repeats the current cursor with no new events changes nothing: no batch for it
            // (FeedAPI v2 sends a cursor in every response, also when there is nothing new).
            if held == 0 && cursors.cursor(partition) == Some(cursor.as_str()) {
                return Ok(());
            }
            // Any other cursor already passed moves the feed back, with or without events held: committing it would
            // resume before events already delivered (or, with events held, before these).
            if seen.contains(&cursor) {
                return Err(ProtocolError::new(
                    ErrorKind::CursorRegressed,
                    "checkpoint moves back to a cursor already passed",
                )
                .at(line.number, line.offset)
                .in_partition(partition));
            }
            seen.push(&cursor);
            stats.released += held as u64;
            cursors.handle_checkpoint(partition, &cursor);
            builder.handle_checkpoint(partition, cursor);
        }
        LineKind::Ignored => stats.ignored += 1,
    }
    Ok(())
}
