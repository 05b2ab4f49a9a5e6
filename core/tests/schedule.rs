//! The FeedAPI v2 schedule (core/src/schedule.rs) as pure state, with simulated time: which partition is read next,
//! fair turns, the re-plan after a 409, closed parents and their children, `partitions`, impossible documents, live
//! resting times. The same rules through the wasm class: tests/js/unit/v2-schedule.test.mjs; over real HTTP:
//! tests/interop/v2-source.test.mjs and v2-hardening.test.mjs.
#![allow(clippy::unwrap_used)] // a test panics on what it did not expect

use feedpump_core::schedule::{
    partition_scope, Ids, Partition, Schedule, ScheduleError, Step, BATCHES_PER_TURN, PAGES_PER_TURN,
};

/// A list of partitions given as `id`, `id!` (closed), `id<parent` (startsAfterPartition), `id~a,b` (cursorFrom).
fn doc(specs: &[&str]) -> Vec<Partition> {
    specs
        .iter()
        .map(|s| {
            let (s, from) = s.split_once('~').unwrap_or((s, ""));
            let (s, after) = s.split_once('<').map_or((s, None), |(s, a)| (s, Some(a.parse().unwrap())));
            let (id, closed) = s.strip_suffix('!').map_or((s, false), |id| (id, true));
            Partition {
                id: id.parse().unwrap(),
                closed,
                starts_after: after,
                cursor_from: from.split(',').filter(|a| !a.is_empty()).map(|a| a.parse().unwrap()).collect(),
            }
        })
        .collect()
}

fn schedule(partitions: Option<&[u16]>, live_ms: Option<u64>) -> Schedule {
    Schedule::new(partitions.map(Ids::new), live_ms, 0)
}

/// What a drive saw: a partition read, or a step that is not a read.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Seen {
    Read(u16),
    CaughtUp,
    Wait,
    End,
}
use Seen::{CaughtUp, Read};

/// Drives the schedule at time `now`: `end(id)` says how each turn ends (caught up, delivered); returns what was seen,
/// until a step `until` (not included) or `max` steps, and the step it stopped at.
fn drive(
    s: &mut Schedule,
    mut end: impl FnMut(u16) -> (bool, bool),
    until: Seen,
    max: usize,
) -> Result<(Vec<Seen>, Option<Step>), ScheduleError> {
    let mut seen = Vec::new();
    for _ in 0..max {
        let step = s.poll(0)?;
        let kind = match step {
            Step::Read { id, .. } => Read(id),
            Step::CaughtUp => CaughtUp,
            Step::Wait { .. } => Seen::Wait,
            Step::End => Seen::End,
        };
        if kind == until {
            return Ok((seen, Some(step)));
        }
        seen.push(kind);
        if let Step::Read { id, .. } = step {
            let (caught_up, delivered) = end(id);
            if delivered {
                s.handle_batch(1, true);
            }
            s.handle_turn_end(caught_up, 0);
        }
    }
    Ok((seen, None))
}

fn caught_up(_: u16) -> (bool, bool) {
    (true, false)
}

/// Drives to the end (not live), every turn caught up without events.
fn read_all(s: &mut Schedule) -> Vec<Seen> {
    drive(s, caught_up, Seen::End, 100_000).unwrap().0
}

/// Drives to the end (not live), every turn caught up, expecting an error: the ids read before it, and the error.
fn read_to_error(s: &mut Schedule) -> (Vec<u16>, ScheduleError) {
    let mut read = Vec::new();
    let e = drive(
        s,
        |id| {
            read.push(id);
            caught_up(id)
        },
        Seen::End,
        100,
    )
    .unwrap_err();
    (read, e)
}

fn read_id(step: Result<Step, ScheduleError>) -> u16 {
    match step {
        Ok(Step::Read { id, .. }) => id,
        other => panic!("not a read: {other:?}"),
    }
}

fn message(e: ScheduleError) -> String {
    assert_eq!(e.code(), "bad-discovery");
    e.to_string()
}

#[test]
fn fair_turns_a_partition_never_caught_up_gets_one_turn_a_round() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["0", "1", "2"])).unwrap();
    let mut turns = [0; 3];
    let (read, _) = drive(
        &mut s,
        |id| {
            turns[usize::from(id)] += 1;
            (id != 0 && turns[usize::from(id)] >= 3, true)
        },
        Seen::End,
        12,
    )
    .unwrap();
    assert_eq!(read[..9], [0, 1, 2, 0, 1, 2, 0, 1, 2].map(Read));
    assert_eq!(read[9..12], [Read(0); 3], "once 1 and 2 are caught up only the hot one is left");
}

#[test]
fn a_new_schedule_starts_its_first_round_at_the_start_position_then_goes_round_robin() {
    // Runs shorter than one turn (maxBatches, a time budget) are each a new feed: if every one started at the first
    // listed partition, a partition 0 that always has news would be the only one ever read.
    for (start, first) in [(0, 0), (1, 1), (2, 2), (3, 3), (4, 0), (7, 3), (u32::MAX, 3)] {
        let mut s = Schedule::new(None, None, start);
        s.plan(&doc(&["0", "1", "2", "3"])).unwrap();
        // No partition is ever caught up: the later rounds keep the same order.
        let (read, _) = drive(&mut s, |_| (false, true), Seen::End, 12).unwrap();
        let want: Vec<Seen> = (0..12).map(|k| Read((first + k) % 4)).collect();
        assert_eq!(read, want, "start {start}");
    }
    // Modulo the partitions due, not the list: 1 is finished, 3 is outside the filter.
    let mut s = Schedule::new(Some(Ids::new(&[0, 1, 2, 4])), None, 1);
    s.plan(&doc(&["1!"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(1), CaughtUp]);
    s.plan(&doc(&["0", "1!", "2", "3", "4"])).unwrap();
    // The turn of 1 moved the start on to 2: the third of 0, 2, 4.
    assert_eq!(read_all(&mut s), [Read(4), Read(0), Read(2), CaughtUp]);
}

#[test]
fn the_start_position_never_reads_a_child_before_its_parent() {
    // Only the partitions due are rotated: a child waiting for its closed parent (method 1, or method 2 with its
    // ancestor still listed closed) joins the queue once the parent is read to its end, whatever the start.
    for start in 0..8 {
        let mut s = Schedule::new(None, None, start);
        s.plan(&doc(&["0!", "1<0", "2~0", "3!", "4!<3", "5<4", "6"])).unwrap();
        let read = read_all(&mut s);
        let at = |id: u16| read.iter().position(|&r| r == Read(id)).unwrap();
        assert_eq!(read.len(), 8, "start {start}: every partition once, then caught up: {read:?}");
        assert!(at(0) < at(1) && at(0) < at(2) && at(3) < at(4) && at(4) < at(5), "start {start}: {read:?}");
        // The first turn goes to the partition due at `start` modulo the 3 due: 0, 3, 6.
        assert_eq!(read[0], Read([0, 3, 6][start as usize % 3]), "start {start}");
    }
    // A split while running, re-planned after the 409: the children still come after their parent.
    let mut s = Schedule::new(None, None, 1);
    s.plan(&doc(&["0", "1", "2"])).unwrap();
    assert_eq!(drive(&mut s, caught_up, CaughtUp, 100).unwrap().0, [1, 2, 0].map(Read));
    s.plan(&doc(&["0", "1!", "2", "4<1", "5<1"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(1), Read(4), Read(5), CaughtUp], "0 and 2, caught up while open, rest");
}

#[test]
fn a_re_plan_goes_on_from_the_partition_after_the_last_read() {
    // A 409 at every turn (a token that keeps changing, a failover that rediscovers after every turn) re-plans after
    // each one: every partition still gets its turn (before, each re-plan started again at the first listed).
    let mut s = schedule(None, None);
    let list = doc(&["0", "1", "2"]);
    let mut read = Vec::new();
    for _ in 0..7 {
        s.plan(&list).unwrap();
        read.push(read_id(s.poll(0)));
        s.handle_batch(1, true);
        s.handle_turn_end(false, 0); // cut by the 409
    }
    assert_eq!(read, [0, 1, 2, 0, 1, 2, 0]);
}

#[test]
fn a_turn_ends_after_batches_per_turn_batches_when_another_partition_waits() {
    // A page that never ends (a server that streams a partition for ever) must not starve the others: the turn also
    // ends after BATCHES_PER_TURN batches of one page, whenever another partition waits for its turn.
    let mut s = schedule(None, None);
    s.plan(&doc(&["0", "1"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    for k in 1..=BATCHES_PER_TURN {
        assert!(!s.handle_batch(1, true), "batch {k} is within the turn");
    }
    assert!(s.handle_batch(1, true), "one more batch of the same page ends the turn");
    s.handle_turn_end(false, 0);
    assert_eq!(read_id(s.poll(0)), 1, "the other partition's turn");
    s.handle_turn_end(true, 0);
    // Alone, a partition keeps its page: nothing waits.
    assert_eq!(read_id(s.poll(0)), 0);
    for _ in 0..10 * BATCHES_PER_TURN {
        assert!(!s.handle_batch(1, true), "no other partition is due: the turn goes on");
    }
    // A caught-up partition resting before its next live poll counts as waiting too.
    let mut s = schedule(None, Some(1_000));
    s.plan(&doc(&["0", "1"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    s.handle_turn_end(true, 0);
    assert_eq!(read_id(s.poll(0)), 1);
    for _ in 0..BATCHES_PER_TURN {
        assert!(!s.handle_batch(1, true));
    }
    assert!(s.handle_batch(1, true), "partition 0 rests until its next poll: it waits");
    assert_eq!(BATCHES_PER_TURN, 64);
}

#[test]
fn a_turn_ends_after_pages_per_turn_pages() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["0"])).unwrap();
    assert!(!s.handle_batch(1, true), "no turn yet: nothing counts");
    assert_eq!(read_id(s.poll(0)), 0);
    // The reader numbers its pages from 1; several batches may come from one page.
    for page in 1..=PAGES_PER_TURN {
        assert!(!s.handle_batch(page, true), "page {page} is within the turn");
        assert!(!s.handle_batch(page, false), "page {page} is within the turn");
    }
    assert!(s.handle_batch(PAGES_PER_TURN + 1, false), "the batch that starts one more page ends the turn");
    s.handle_turn_end(false, 0);
    // The next turn counts from its own first page (a new reader's, or a later one).
    assert_eq!(read_id(s.poll(0)), 0);
    assert!(!s.handle_batch(7, false));
    assert!(!s.handle_batch(7 + PAGES_PER_TURN - 1, false));
    assert!(s.handle_batch(7 + PAGES_PER_TURN, false));
    assert_eq!(PAGES_PER_TURN, 4);
}

#[test]
fn a_split_while_running_is_re_read_then_its_children() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["0", "1", "2"])).unwrap();
    assert_eq!(drive(&mut s, caught_up, CaughtUp, 100).unwrap().0, [0, 1, 2].map(Read));
    // The 409 of the next request: a new discovery, in which 1 is closed and 4, 5 start after it. 1 is read again
    // (now closed: finished once read to its end), then its children; 0 and 2, caught up and still open, are not.
    s.plan(&doc(&["0", "1!", "2", "4<1", "5<1"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(1), Read(4), Read(5), CaughtUp]);
    // Partitions whose turns were cut (not caught up) are read again, from where they were.
    let mut t = schedule(None, None);
    t.plan(&doc(&["0", "1", "2"])).unwrap();
    assert_eq!(drive(&mut t, |_| (false, true), CaughtUp, 3).unwrap().0, [0, 1, 2].map(Read));
    t.plan(&doc(&["0", "1!", "2", "4<1"])).unwrap();
    assert_eq!(read_all(&mut t), [Read(0), Read(1), Read(2), Read(4), CaughtUp]);
}

#[test]
fn a_partition_finished_while_closed_stays_finished_children_wait_for_their_parent() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["7<3", "3!"])).unwrap();
    assert_eq!(drive(&mut s, caught_up, CaughtUp, 100).unwrap().0, [Read(3), Read(7)]);
    s.plan(&doc(&["3!", "7!<3", "8<7"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(7), Read(8), CaughtUp], "3 is not read again; 7 is, now closed; then 8");
}

#[test]
fn partitions_only_the_listed_ids_and_their_split_children() {
    let mut s = schedule(Some(&[1]), None);
    s.plan(&doc(&["0", "1!", "2", "4<1", "6!<1", "9<6", "11~1", "12~0"])).unwrap();
    // 11 takes the cursor of 1 (listed, closed): it starts once 1 is read to its end, after 4 and 6 (list order).
    assert_eq!(read_all(&mut s), [Read(1), Read(4), Read(6), Read(11), Read(9), CaughtUp]);
    let mut t = schedule(Some(&[4]), None);
    t.plan(&doc(&["1!", "4<1"])).unwrap();
    assert_eq!(read_all(&mut t), [Read(4), CaughtUp], "a parent outside the scope is not waited for");
}

#[test]
fn a_method_2_child_whose_ancestor_is_still_listed_closed_waits_for_it() {
    let mut s = schedule(None, None);
    // 1 and 2 take 0's cursor: read alongside 0 they would start from where 0 was, and what 0 still serves would
    // come again on them. 3's first ancestor (9) is not listed, the next (0) is: it waits for 0. 5's ancestor 4 is
    // open: not waited for. 6 names itself: no cycle.
    s.plan(&doc(&["0!", "1~0", "2~0", "3~9,0", "4", "5~4", "6!~6"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(0), Read(4), Read(5), Read(6), Read(1), Read(2), Read(3), CaughtUp]);
}

#[test]
fn read_steps_name_the_position_in_the_list() {
    let mut s = schedule(Some(&[5]), None);
    let list = doc(&["3", "5!", "2", "9<5"]);
    s.plan(&list).unwrap();
    assert_eq!(s.poll(0), Ok(Step::Read { id: 5, index: 1 }));
    s.handle_turn_end(true, 0);
    assert_eq!(s.poll(0), Ok(Step::Read { id: 9, index: 3 }));
}

#[test]
fn impossible_documents_what_can_be_read_is_read_then_bad_discovery_names_why() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["0", "1<0", "2!<3", "3!<2", "5<1"])).unwrap();
    let (read, e) = read_to_error(&mut s);
    let m = message(e);
    assert!(m.contains("partition 1 startsAfterPartition 0, which is not closed"), "{m}");
    assert!(m.contains("cycle"), "{m}");
    assert_eq!(read, [0]);
    assert_eq!(s.plan(&doc(&["0", "0"])).map_err(message), Err("partition 0 is listed twice".into()));
}

#[test]
fn a_partition_listed_twice_changes_nothing() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["0", "1"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    assert_eq!(s.plan(&doc(&["2", "2"])), Err(ScheduleError::ListedTwice(2)));
    // The turn of 0 goes on; 1 is still due.
    s.handle_turn_end(true, 0);
    assert_eq!(read_all(&mut s), [Read(1), CaughtUp]);
    let mut t = schedule(Some(&[4]), None);
    assert_eq!(t.plan(&doc(&["1", "4", "1"])), Err(ScheduleError::ListedTwice(1)), "also out of the scope");
}

#[test]
fn live_a_caught_up_partition_rests_for_the_interval_caught_up_is_signalled_once_per_catch_up() {
    let mut s = schedule(None, Some(100));
    s.plan(&doc(&["0", "1"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    s.handle_turn_end(true, 0);
    assert_eq!(read_id(s.poll(0)), 1);
    s.handle_turn_end(true, 10);
    assert_eq!(s.poll(10), Ok(Step::CaughtUp));
    assert_eq!(s.poll(20), Ok(Step::Wait { ms: 80, rediscover: false }));
    assert_eq!(read_id(s.poll(100)), 0);
    s.handle_batch(1, true);
    s.handle_turn_end(true, 100);
    assert_eq!(read_id(s.poll(110)), 1);
    s.handle_turn_end(true, 110);
    assert_eq!(s.poll(110), Ok(Step::CaughtUp), "events came: caught up again");
    assert!(matches!(s.poll(110), Ok(Step::Wait { .. })));
}

/// One hot partition (0, never caught up, always events) and one that is caught up at every turn, live every 50 ms,
/// polled every 10 ms from `from` to `to`: the partitions read at or after `record`.
fn hot_and_cold(h: &mut Schedule, from: u64, to: u64, record: u64) -> Vec<u16> {
    let mut order = Vec::new();
    for now in (from..to).step_by(10) {
        let Ok(Step::Read { id, .. }) = h.poll(now) else { continue };
        if now >= record {
            order.push(id);
        }
        if id == 0 {
            h.handle_batch(1, true);
            h.handle_turn_end(false, now);
        } else {
            h.handle_turn_end(true, now);
        }
    }
    order
}

#[test]
fn live_a_hot_partition_cannot_keep_a_resting_one_out_even_after_a_long_run() {
    let mut h = schedule(None, Some(50));
    h.plan(&doc(&["0", "1"])).unwrap();
    let order = hot_and_cold(&mut h, 0, 300, 0);
    assert!(order.iter().filter(|&&id| id == 1).count() >= 4, "partition 1 is polled again while 0 is hot: {order:?}");
    // A long live run keeps the same fair order.
    let late = hot_and_cold(&mut h, 300, 300 + 30_000 * 10, 299_010);
    assert!(late.contains(&0) && late.contains(&1), "both still read after 30,000 turns: {late:?}");
}

#[test]
fn live_every_partition_finished_waits_then_discovers_again() {
    let mut c = schedule(None, Some(100));
    c.plan(&doc(&["0!"])).unwrap();
    assert_eq!(drive(&mut c, caught_up, Seen::Wait, 100).unwrap().1, Some(Step::Wait { ms: 100, rediscover: true }));
    c.plan(&doc(&["0!"])).unwrap();
    assert_eq!(
        c.poll(200),
        Ok(Step::Wait { ms: 100, rediscover: true }),
        "the same finished list: no new caught-up signal"
    );
    c.plan(&doc(&["0!", "1"])).unwrap();
    assert_eq!(read_id(c.poll(300)), 1, "a new partition is read");
    c.handle_turn_end(true, 300);
    assert_eq!(c.poll(300), Ok(Step::CaughtUp));
}

#[test]
fn hostile_sizes_cost_linear_time() {
    // A 32,768-partition chain listed children first.
    let n: u16 = 32_767;
    let chain: Vec<Partition> = (0..=n)
        .rev()
        .map(|id| Partition { id, closed: true, starts_after: id.checked_sub(1), cursor_from: Vec::new() })
        .collect();
    let mut s = schedule(Some(&[0]), None);
    s.plan(&chain).unwrap();
    let read = read_all(&mut s);
    assert_eq!(read.len(), usize::from(n) + 2);
    assert_eq!(read[..3], [Read(0), Read(1), Read(2)], "each child after its parent");
    // The same ids in a ring.
    let ring: Vec<Partition> = chain
        .iter()
        .map(|p| Partition { starts_after: Some(((u32::from(p.id) + 1) % 32_768) as u16), ..p.clone() })
        .collect();
    let mut r = schedule(None, None);
    r.plan(&ring).unwrap();
    let m = message(r.poll(0).unwrap_err());
    assert!(m.contains("cycle") && m.len() < 400, "{m}");
    // 100,000 entries (ids repeat).
    let many: Vec<Partition> =
        (0..100_000u32).map(|i| Partition { id: (i % 32_768) as u16, ..Partition::default() }).collect();
    assert!(matches!(schedule(None, None).plan(&many), Err(ScheduleError::ListedTwice(0))));
}

#[test]
fn nothing_to_read_signals_caught_up_once_then_ends() {
    let mut fresh = schedule(None, None);
    assert_eq!([fresh.poll(0), fresh.poll(0)], [Ok(Step::CaughtUp), Ok(Step::End)]);
    let mut empty = schedule(None, None);
    empty.plan(&[]).unwrap();
    assert_eq!([empty.poll(0), empty.poll(0)], [Ok(Step::CaughtUp), Ok(Step::End)]);
    let mut live = schedule(None, Some(100));
    assert_eq!([live.poll(0), live.poll(0)], [Ok(Step::CaughtUp), Ok(Step::Wait { ms: 100, rediscover: true })]);
}

#[test]
fn a_turn_end_with_no_turn_changes_nothing() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["0"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    s.handle_turn_end(true, 0);
    assert!(!s.handle_batch(1, true));
    s.handle_turn_end(false, 0);
    assert_eq!(s.poll(0), Ok(Step::CaughtUp), "the second end neither queued a turn nor counted as events");
    let mut t = schedule(None, None);
    t.plan(&doc(&["0"])).unwrap();
    assert_eq!(read_id(t.poll(0)), 0);
    t.plan(&doc(&["0"])).unwrap();
    t.handle_batch(1, true);
    t.handle_turn_end(false, 0);
    assert_eq!(read_all(&mut t), [Read(0), CaughtUp], "partition 0 is due once, from the re-plan");
}

#[test]
fn live_a_round_that_brings_no_events_is_not_signalled_again() {
    let mut s = schedule(None, Some(100));
    s.plan(&doc(&["0", "1"])).unwrap();
    assert_eq!(drive(&mut s, caught_up, CaughtUp, 100).unwrap().0, [Read(0), Read(1)]);
    assert_eq!(read_id(s.poll(100)), 0);
    s.handle_turn_end(true, 100);
    assert_eq!(read_id(s.poll(100)), 1);
    s.handle_turn_end(true, 100);
    assert_eq!(s.poll(100), Ok(Step::Wait { ms: 100, rediscover: false }));
}

#[test]
fn finished_only_while_listed_closed() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["3!"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(3), CaughtUp]);
    s.plan(&doc(&["4"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(4), CaughtUp]);
    s.plan(&doc(&["3", "4"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(3), CaughtUp], "3 is open now: read again; 4 was caught up, still open");
    s.plan(&doc(&["3", "4!"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(4), CaughtUp], "4 closed now: read to its end again");
}

#[test]
fn scope_a_child_of_an_unlisted_parent_only_if_the_parent_is_in_the_filter_a_cycle_outside_is_ignored() {
    let mut s = schedule(Some(&[9]), None);
    s.plan(&doc(&["4!<9", "5<8", "6", "7<4"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(4), Read(7), CaughtUp], "4 (its parent 9 is in the filter, unlisted), then 7");
    let mut t = schedule(Some(&[1]), None);
    t.plan(&doc(&["1", "5<6", "6<5"])).unwrap();
    assert_eq!(read_all(&mut t), [Read(1), CaughtUp], "the cycle 5, 6 is not in scope: no bad-discovery");
}

#[test]
fn partition_scope_per_position() {
    let list = doc(&["0", "1!", "2", "4<1", "6!<1", "9<6", "11~1", "12~0", "13<20", "14<21"]);
    let scope = partition_scope(&list, &Ids::new(&[1, 21]));
    assert_eq!(scope, [false, true, false, true, true, true, true, false, false, true]);
    // An id listed twice is taken from its last entry (the consumer groups map the list by id).
    assert_eq!(partition_scope(&doc(&["3", "4<3", "3~9"]), &Ids::new(&[9])), [true; 3]);
    assert_eq!(partition_scope(&doc(&["3~9", "4<3", "3"]), &Ids::new(&[9])), [false; 3]);
    assert!(
        !Ids::new(&[5]).contains(4)
            && Ids::new(&[5, 32_767]).contains(32_767)
            && !Ids::new(&[]).contains(0)
            && Ids::new(&[65_535]).contains(65_535)
    );
}

#[test]
fn impossible_documents_the_reasons_are_listed_up_to_5_then_counted() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["0", "1<0", "2<0", "3<0", "4<0", "5<0", "6<0", "7<0"])).unwrap();
    let reasons: Vec<String> =
        (1..=5).map(|id| format!("partition {id} startsAfterPartition 0, which is not closed")).collect();
    assert_eq!(
        drive(&mut s, caught_up, Seen::End, 100).map_err(message).unwrap_err(),
        format!("the discovery document can never be read to the end: {}; and 2 more", reasons.join("; "))
    );
    let mut five = schedule(None, None);
    five.plan(&doc(&["0", "1<0", "2<0", "3<0", "4<0", "5<0"])).unwrap();
    let m = drive(&mut five, caught_up, Seen::End, 100).map_err(message).unwrap_err();
    assert!(m.ends_with("partition 5 startsAfterPartition 0, which is not closed"), "{m}");
}

#[test]
fn impossible_documents_a_cycle_is_named_by_its_members_all_up_to_8_then_cut() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["5!<2", "2!<3", "3!<2"])).unwrap();
    assert_eq!(
        message(s.poll(0).unwrap_err()),
        "the discovery document can never be read to the end: partitions 2, 3 form a startsAfterPartition cycle"
    );
    let ring = |n: u16| -> Vec<Partition> {
        (0..n)
            .map(|i| Partition { id: i, closed: true, starts_after: Some((i + 1) % n), cursor_from: Vec::new() })
            .collect()
    };
    let mut eight = schedule(None, None);
    eight.plan(&ring(8)).unwrap();
    let m = message(eight.poll(0).unwrap_err());
    assert!(m.ends_with(": partitions 0, 1, 2, 3, 4, 5, 6, 7 form a startsAfterPartition cycle"), "{m}");
    let mut nine = schedule(None, None);
    nine.plan(&ring(9)).unwrap();
    let m = message(nine.poll(0).unwrap_err());
    assert!(m.ends_with(": partitions 0, 1, 2, 3, 4, 5, 6, 7, … (9 in all) form a startsAfterPartition cycle"), "{m}");
}

#[test]
fn a_cycle_through_a_partition_finished_earlier_still_blocks_its_members() {
    let mut s = schedule(None, None);
    s.plan(&doc(&["3!"])).unwrap();
    assert_eq!(read_all(&mut s), [Read(3), CaughtUp]);
    s.plan(&doc(&["3!<2", "2!<3"])).unwrap();
    let (read, e) = read_to_error(&mut s);
    assert!(message(e).contains("partitions 3, 2 form a startsAfterPartition cycle"));
    assert!(read.is_empty(), "2 is not read though its parent 3 is finished");
}

#[test]
fn a_live_interval_beyond_a_timer_waits_at_most_max_timer_ms() {
    // Found by the `schedule` fuzz target: a live interval of 2^31 ms or more was given back as the wait as it was,
    // beyond what a timer takes (2^31-1 ms; setTimeout fires at once past it: a busy loop of rediscoveries).
    for interval in [1 << 31, u64::MAX] {
        let mut s = schedule(None, Some(interval));
        s.plan(&doc(&["0"])).unwrap();
        assert_eq!(s.poll(0), Ok(Step::Read { id: 0, index: 0 }));
        s.handle_turn_end(true, 5);
        assert_eq!(s.poll(5), Ok(Step::CaughtUp));
        assert_eq!(s.poll(5), Ok(Step::Wait { ms: feedpump_core::MAX_TIMER_MS, rediscover: false }));
        let mut s = schedule(None, Some(interval));
        s.plan(&[]).unwrap();
        assert_eq!(s.poll(0), Ok(Step::CaughtUp));
        assert_eq!(s.poll(0), Ok(Step::Wait { ms: feedpump_core::MAX_TIMER_MS, rediscover: true }));
    }
}

/// A server whose token changes every few requests (a 409 every third turn here, each followed by a discovery of the
/// same list): a partition caught up while open stays caught up across the re-plan, so a feed that is not live ends
/// once every partition was caught up, instead of reading them all again after every 409, for ever.
#[test]
fn a_re_plan_keeps_an_open_partition_caught_up_so_a_409_every_few_turns_cannot_keep_the_feed_from_ending() {
    let list = doc(&["0", "1", "2", "3"]);
    let mut s = schedule(None, None);
    s.plan(&list).unwrap();
    let mut read = Vec::new();
    let mut turns = 0;
    let end = loop {
        let step = s.poll(0).unwrap();
        let Step::Read { id, .. } = step else { break step };
        assert!(turns < 1_000, "still reading after 1,000 turns: {:?}", &read[read.len() - 12..]);
        turns += 1;
        read.push(id);
        if turns % 3 == 0 {
            s.handle_turn_end(false, 0); // a 409: the turn is cut, then the same list again
            s.plan(&list).unwrap();
        } else {
            s.handle_turn_end(true, 0);
        }
    };
    assert_eq!(end, Step::CaughtUp);
    assert_eq!(s.poll(0), Ok(Step::End));
    assert_eq!(read.len(), 5, "each partition read to its end once, the one cut by the 409 twice: {read:?}");
}

/// Live: a partition caught up rests for the interval, and a 409 re-plan in the meantime (another partition's turn)
/// does not make it due at once (a 409 every few requests would otherwise poll every partition as fast as the retry
/// policy allows). It is still re-read at once when it became closed (to finish it; then its children) and is read
/// on as before once its rest is over (the resting queue is rebuilt in list order: one may wait behind an earlier
/// listed one, less than an interval).
#[test]
fn live_a_re_plan_keeps_a_resting_partition_resting() {
    let mut s = schedule(None, Some(100));
    s.plan(&doc(&["0", "1", "2"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    s.handle_turn_end(true, 0);
    assert_eq!(read_id(s.poll(10)), 1);
    s.handle_turn_end(true, 10);
    assert_eq!(read_id(s.poll(20)), 2);
    s.handle_turn_end(false, 20); // a 409
    s.plan(&doc(&["0", "1", "2"])).unwrap();
    assert_eq!(read_id(s.poll(20)), 2, "the cut turn goes on; 0 and 1 rest");
    s.handle_turn_end(true, 30);
    assert_eq!(s.poll(30), Ok(Step::CaughtUp));
    assert_eq!(s.poll(40), Ok(Step::Wait { ms: 60, rediscover: false }), "0 rests until 100");
    assert_eq!(read_id(s.poll(100)), 0);
    s.handle_turn_end(true, 100);
    // 1 (resting until 110) is closed now and split: read at once to finish it, then its child; 0 and 2 rest on.
    s.plan(&doc(&["0", "1!", "2", "5<1"])).unwrap();
    assert_eq!(read_id(s.poll(100)), 1);
    s.handle_turn_end(true, 100);
    assert_eq!(read_id(s.poll(100)), 5);
    s.handle_turn_end(true, 100);
    assert_eq!(s.poll(100), Ok(Step::CaughtUp), "a new partition was read");
    // 0 rests until 200, 2 until 130: the queue, rebuilt in list order, waits for 0 first (2 waits less than an
    // interval more), then both are read.
    assert_eq!(s.poll(100), Ok(Step::Wait { ms: 100, rediscover: false }));
    assert_eq!(read_id(s.poll(200)), 0);
    s.handle_turn_end(true, 200);
    assert_eq!(read_id(s.poll(200)), 2);
}

/// A v2 reader of partition 0 from cursor `c5` (the core's driver), its request answered 200 at `now`.
fn v2_reader(now: u64) -> feedpump_core::driver::Driver {
    use feedpump_core::driver::{Action, Driver, DriverOptions};
    use feedpump_core::request::V2Options;
    use feedpump_core::session::Protocol;
    let mut config = feedpump_core::SessionConfig::new(
        "http://127.0.0.1:1/feed",
        feedpump_core::CursorSet::new(vec!["c5".into()]).unwrap(),
    );
    config.protocol = Protocol::V2(V2Options { token: "t".into(), ..V2Options::default() });
    let mut d = Driver::new(config, DriverOptions { flush_ms: 10, idle_ms: 1_000, can_refresh: false });
    assert_eq!(d.poll(now), Action::Fetch { refresh: false });
    d.handle_status(200, None);
    assert_eq!(d.poll(now), Action::Read);
    d
}

/// Feeds `chunk` at `now` and tells the schedule of what the reader hands out (as js/src/source/v2.ts does); returns
/// whether the turn is over, or `None` when nothing was handed out.
fn feed(d: &mut feedpump_core::driver::Driver, s: &mut Schedule, now: u64, chunk: &[u8]) -> Option<bool> {
    use feedpump_core::driver::Action;
    assert_eq!(d.handle_chunk(now, chunk), chunk.len());
    match d.poll(now) {
        Action::Batch(out) => {
            let events = out.batch.as_ref().is_some_and(|b| !b.meta.is_empty());
            let over = s.handle_batch(out.page, events);
            assert_eq!(d.poll(now), feedpump_core::driver::Action::Read, "one output per chunk");
            Some(over)
        }
        other => {
            assert_eq!(other, feedpump_core::driver::Action::Read);
            None
        }
    }
}

#[test]
fn a_page_of_heartbeats_for_ever_is_cut_when_another_partition_waits_and_a_lone_long_poll_goes_on() {
    // A page that brings only lines to ignore (an unknown command every 50 ms, blank lines), never a cursor: each
    // chunk of them is an empty output of the reader, which the turn counts as a batch. With another partition due,
    // the turn ends after BATCHES_PER_TURN of them; the partition's cursor has not moved (nothing was passed), so its
    // next turn asks for the same page again. (Before, such a page made no output: the turn never ended and the other
    // partitions were never read.)
    const HEARTBEAT: &[u8] = b"{\"x-heartbeat\":{\"note\":\"unknown command: ignore\"}}\n";
    let mut s = schedule(None, None);
    s.plan(&doc(&["0", "1"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    let mut d = v2_reader(0);
    let mut now = 0;
    for k in 1..=BATCHES_PER_TURN {
        now += 50;
        let chunk: &[u8] = if k % 2 == 0 { HEARTBEAT } else { b"\n  \r\n\n" };
        assert_eq!(feed(&mut d, &mut s, now, chunk), Some(false), "heartbeat {k} is within the turn");
        // The heartbeats keep the body alive: the idle watchdog counts from the last read.
        assert_eq!(d.poll_timeout(), Some(now + 1_000));
    }
    now += 50;
    assert_eq!(feed(&mut d, &mut s, now, HEARTBEAT), Some(true), "one more ends the turn: partition 1 waits");
    assert_eq!(d.session().cursors().cursor(0), Some("c5"), "the page passed no checkpoint");
    assert_eq!(d.session().stats().events, 0);
    s.handle_turn_end(false, now);
    assert_eq!(read_id(s.poll(now)), 1, "the other partition's turn");
    s.handle_turn_end(true, now);
    assert_eq!(read_id(s.poll(now)), 0, "then partition 0 again, from the same cursor");

    // Alone (a live long-poll of one partition with heartbeats): no other partition waits, so the page is never cut,
    // and the event that finally comes is handed out.
    let mut s = schedule(None, Some(1_000));
    s.plan(&doc(&["0"])).unwrap();
    assert_eq!(read_id(s.poll(0)), 0);
    let mut d = v2_reader(0);
    for k in 1..=10 * u64::from(BATCHES_PER_TURN) {
        now = k * 500;
        assert_eq!(feed(&mut d, &mut s, now, HEARTBEAT), Some(false), "heartbeat {k}: nothing waits");
    }
    now += 500;
    assert_eq!(feed(&mut d, &mut s, now, b"{\"data\":{\"id\":\"0-1\"}}\n{\"cursor\":\"c6\"}\n"), None, "released");
    assert_eq!(d.poll_timeout(), Some(now + 10), "handed out at the flush deadline");
    d.handle_timeout(now + 10);
    let feedpump_core::driver::Action::Batch(out) = d.poll(now + 10) else { panic!("the event's batch") };
    let batch = out.batch.unwrap();
    assert_eq!((batch.text.as_slice(), batch.checkpoints[0].cursor.as_str()), (&br#"[{"id":"0-1"}]"#[..], "c6"));
    assert!(!s.handle_batch(out.page, true), "the turn goes on");
}
