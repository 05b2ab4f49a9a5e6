"""Reference ZeroEventHub (FeedAPI v1) server for feedpump's interop tests and demo.

The wire side is PyPI zeroeventhub's own `ZeroEventHubFastApiHandler` (a real peer, not a mock); this file only
supplies the `DataReader` backends over a deterministic dataset and a few helper endpoints for the tests.

Dataset: PARTITIONS partitions x EVENTS_PER_PARTITION events. Event `seq` (1-based) of partition `p` has
data {"id": "p<p>-<seq:06>", "seq": seq, "partition": p, "text": ...}; some events carry tricky text (non-ASCII,
astral chars, U+2028/U+0085, escaped newlines, quotes, backslashes, </script>, a "__proto__" key), and one event per
partition is large (~200 KB on the wire). The cursor of an event is its seq as a decimal string; a cursor means
"everything up to and including this seq", so the next page starts at seq + 1.

Endpoints (all GET; the feed endpoints take the v1 query: n, cursor0..cursor{n-1}, pagesizehint, headers):
  /feed/v1            lines interleaved round-robin across the requested partitions; a checkpoint after every
                      CHECKPOINT_EVERY events of a partition and always one after the last event of a partition in
                      the page. pagesizehint (default DEFAULT_PAGE_SIZE) is applied per cursor.
  /ragged/v1          same events, but checkpoints only every CHECKPOINT_EVERY events and after the very last event of
                      a partition: events after a partition's last checkpoint of a page must be held back and refetched.
  /broken/v1          like /feed/v1, but the backend raises after BROKEN_DEFAULT_LINES lines: the handler has already
  /broken/{k}/v1      sent 200 and cuts the chunked body (incomplete body). /broken/{k}/v1 fails after k lines.
  /slow/v1            like /feed/v1 but an async backend that sleeps SLOW_DELAY_S before every line (for early-break tests).
  /group/v1           the dataset over GROUP_PARTITIONS (8) partitions: the consumer-group tests' feed.
  /live/v1            the live feed (the demo's): LIVE partitions that grow while you read them, a steady rate plus
                      bursts, generated from the clock so nothing is stored (see "The live feed" below; --live-* flags).
  /live/heads         per live partition: the first seq of this run's history and the newest seq now.
  /expected           the dataset: per event the exact `json.dumps` text of its data as it appears on the wire ("wire")
                      and the text JavaScript's JSON.stringify must give for the parsed value ("js"); plus last cursors.
  /stats              per endpoint: requests started / completed / failed / aborted (client went away mid-body).

Headers: `ce_id` (the event id), `ce_type` ("feedpump.test.v1"; on /live/v1 the event's type), `content-type`
("application/json"); `_all` gives all three. Unknown names are absent. Without a `headers` parameter events have no
"headers" key.

Run: python tests/ref_server/app.py --port 8400   (--port 0 picks a free port). Prints "LISTENING <port>" once
the socket accepts connections. With --exit-with-stdin it exits when its stdin closes (test harnesses use this so
an orphaned server never outlives its test run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from zeroeventhub import Cursor, ZeroEventHubFastApiHandler

PARTITIONS = 4
GROUP_PARTITIONS = 8
EVENTS_PER_PARTITION = 2500
CHECKPOINT_EVERY = 7
DEFAULT_PAGE_SIZE = 250
BROKEN_DEFAULT_LINES = 40
SLOW_DELAY_S = 0.003
BIG_EVENT_SEQ = 1234
KNOWN_HEADERS = ("ce_id", "ce_type", "content-type")

# Strings that a sloppy client gets wrong. No lone surrogates, no floats whose Python and JS renderings differ, no
# integers above 2**53 and no integer-like object keys: the expected "js" text must be exactly what JSON.stringify
# gives for a correctly parsed value.
TRICKY_TEXTS: tuple[str, ...] = (
    "blåbærsyltetøy ÆØÅ æøå — Grüße, naïve café",
    "emoji 😀 astral 𝄞 family 👨‍👩‍👧 flag 🇳🇴",
    "line separator [\u2028] paragraph separator [\u2029] end",
    "next line [\u0085] no-break space [\u00a0] BOM [\ufeff] DEL [\u007f]",
    'an escaped newline "\\n" and a real one [\n] and CRLF [\r\n] and a tab [\t]',
    "quotes \"double\" 'single' `back` “curly”",
    "backslashes \\ \\\\ \\u0041 \\n (all literal)",
    "</script><script>alert('x')</script><!-- -->",
    "control chars [\u0000] [\u0001] [\u001f] [\b] [\f]",
    '{"partition": 3, "cursor": "999"} inside a string',
    "",
)


def event_data(p: int, seq: int) -> dict[str, Any]:
    """The data object of event `seq` (1-based) of partition `p`; deterministic."""
    data: dict[str, Any] = {"id": f"p{p}-{seq:06d}", "seq": seq, "partition": p}
    if seq == BIG_EVENT_SEQ:
        unit = "big æøå 😀 \u2028 \"q\" \\ </script> "
        data["text"] = unit * (200_000 // 80)
        data["size"] = len(data["text"])
    elif seq % 13 == 0:
        data["text"] = TRICKY_TEXTS[(seq // 13 + p) % len(TRICKY_TEXTS)]
    else:
        data["text"] = f"event {seq} of partition {p}"
    if seq % 97 == 0:
        data["__proto__"] = {"polluted": "yes", "isAdmin": True}
        data["constructor"] = {"prototype": {"polluted": "yes"}}
    if seq % 89 == 0:
        data["nested"] = {
            "list": [1, -2, 1.5, 0.1, -2.25, True, False, None, "s", [], {}],
            "emptyString": "",
            "unicodeKey ø😀": "value",
            "deep": {"a": {"b": {"c": [{"d": "æ"}]}}},
        }
    return data


def expected_dataset() -> dict[str, Any]:
    events = []
    for p in range(PARTITIONS):
        for seq in range(1, EVENTS_PER_PARTITION + 1):
            data = event_data(p, seq)
            events.append(
                {
                    "partition": p,
                    "id": data["id"],
                    "seq": seq,
                    "wire": json.dumps(data),
                    "js": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                }
            )
    return {
        "partitions": PARTITIONS,
        "eventsPerPartition": EVENTS_PER_PARTITION,
        "lastCursors": {str(p): str(EVENTS_PER_PARTITION) for p in range(PARTITIONS)},
        "events": events,
    }


def start_after(cursor: str) -> int:
    """The seq of the last event a cursor covers (the page starts at this + 1)."""
    if cursor == "_first":
        return 0
    if cursor == "_last":
        return EVENTS_PER_PARTITION - 1
    value = int(cursor)  # a bad cursor raises: the handler cuts the body, as with any backend failure
    if value < 0 or value > EVENTS_PER_PARTITION:
        raise ValueError(f"cursor out of range: {cursor!r}")
    return value


def header_values(
    names: Sequence[str] | None, data: dict[str, Any], ce_type: str = "feedpump.test.v1"
) -> dict[str, str] | None:
    if names is None:
        return None
    wanted = KNOWN_HEADERS if "_all" in names else [n for n in names if n in KNOWN_HEADERS]
    values = {"ce_id": data["id"], "ce_type": ce_type, "content-type": "application/json"}
    return {n: values[n] for n in wanted}


def event_line(
    p: int, data: dict[str, Any], headers: Sequence[str] | None, ce_type: str = "feedpump.test.v1"
) -> dict[str, Any]:
    """An event line: partition, then the asked-for headers, then data."""
    line: dict[str, Any] = {"partition": p}
    hv = header_values(headers, data, ce_type)
    if hv is not None:
        line["headers"] = hv
    line["data"] = data
    return line


def page_lines(
    cursors: Sequence[Cursor], headers: Sequence[str] | None, page_size: int | None, ragged: bool
) -> Generator[dict[str, Any], None, None]:
    """The lines of one page: events round-robin across partitions, with checkpoints (see module doc)."""
    per_cursor = page_size if page_size and page_size > 0 else DEFAULT_PAGE_SIZE
    plans = []
    for c in cursors:
        first = start_after(c.cursor) + 1
        last = min(first + per_cursor - 1, EVENTS_PER_PARTITION)
        plans.append((c.partition_id, first, last))
    step = 0
    while True:
        emitted = False
        for p, first, last in plans:
            seq = first + step
            if seq > last:
                continue
            emitted = True
            yield event_line(p, event_data(p, seq), headers)
            at_end = seq == EVENTS_PER_PARTITION or (seq == last and not ragged)
            if seq % CHECKPOINT_EVERY == 0 or at_end:
                # Key order as in the Python project's own tests: cursor first.
                yield {"cursor": str(seq), "partition": p}
        if not emitted:
            return
        step += 1


class Stats:
    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def bump(self, endpoint: str, what: str) -> None:
        c = self.counts.setdefault(endpoint, {"started": 0, "completed": 0, "failed": 0, "aborted": 0})
        c[what] += 1


STATS = Stats()


def counted(endpoint: str, lines: Generator[dict[str, Any], None, None]) -> Generator[dict[str, Any], None, None]:
    """Yields `lines`, counting the request in STATS: started, then completed, failed or aborted (client went away)."""
    STATS.bump(endpoint, "started")
    try:
        yield from lines
    except GeneratorExit:
        STATS.bump(endpoint, "aborted")
        raise
    except Exception:
        STATS.bump(endpoint, "failed")
        raise
    STATS.bump(endpoint, "completed")


class CountedReader:
    """A sync DataReader whose requests are counted in STATS; subclasses give `endpoint` and `lines()`."""

    endpoint: str

    def get_data(
        self, cursors: Sequence[Cursor], headers: Sequence[str] | None, page_size: int | None
    ) -> Generator[dict[str, Any], None, None]:
        return counted(self.endpoint, self.lines(cursors, headers, page_size))

    def lines(
        self, cursors: Sequence[Cursor], headers: Sequence[str] | None, page_size: int | None
    ) -> Generator[dict[str, Any], None, None]:
        raise NotImplementedError


class DatasetReader(CountedReader):
    """DataReader over the dataset (sync generator)."""

    def __init__(self, endpoint: str, ragged: bool = False, fail_after: int | None = None) -> None:
        self.endpoint = endpoint
        self.ragged = ragged
        self.fail_after = fail_after

    def lines(
        self, cursors: Sequence[Cursor], headers: Sequence[str] | None, page_size: int | None
    ) -> Generator[dict[str, Any], None, None]:
        for sent, line in enumerate(page_lines(cursors, headers, page_size, self.ragged)):
            if self.fail_after is not None and sent >= self.fail_after:
                raise RuntimeError(f"backend failure after {sent} lines (deliberate)")
            yield line


class SlowReader:
    """DataReader with an async generator that sleeps before every line; a client that goes away cancels it."""

    endpoint = "slow"

    def get_data(
        self, cursors: Sequence[Cursor], headers: Sequence[str] | None, page_size: int | None
    ) -> AsyncGenerator[dict[str, Any], None]:
        async def gen() -> AsyncGenerator[dict[str, Any], None]:
            STATS.bump(self.endpoint, "started")
            try:
                for line in page_lines(cursors, headers, page_size, False):
                    await asyncio.sleep(SLOW_DELAY_S)
                    yield line
            except (GeneratorExit, asyncio.CancelledError):
                STATS.bump(self.endpoint, "aborted")
                raise
            STATS.bump(self.endpoint, "completed")

        return gen()


# --- The live feed (/live/v1): a feed that grows while you read it (the demo's feed) ---------------------------------
#
# Nothing is stored: the feed is a pure function of time. Partition p holds, at time t, every event its schedule has
# produced by t: a steady share of `rate` events/s (each partition's events evenly spaced, the partitions offset from
# one another) plus a burst of `burst` events every `burst_every_s` seconds, all in one partition (round-robin over the
# bursts). Event `seq` of partition p is the seq-th event of that schedule, counted from LIVE_EPOCH_MS, so its data
# (and its time `at`, found by bisecting the schedule) follows from (p, seq) alone: memory stays constant however long
# the server runs, and cursors stay valid across server restarts.
#
# History starts when the server starts: `_first` is the first event scheduled after that. A cursor older than that
# (from an earlier run of the server) resumes at the first event of this run; the seqs in between (events "produced"
# while the server was down) are skipped, a gap the consumer can see in `seq`. A cursor beyond the newest event (the
# server's clock went back, or not a cursor of this feed) makes the backend raise: the handler cuts the body.

LIVE_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z: seqs count from here, so they do not restart with the server
LIVE_TYPES = ("order.created", "order.paid", "order.packed", "order.shipped", "order.delivered", "order.cancelled")
LIVE_CUSTOMERS = ("Ada", "Bjørn", "Chen", "Dagny", "Émile", "Farah", "Gustav", "Hiro", "Ingrid", "José", "Kari", "Lars")
LIVE_SKUS = ("tea-green-100g", "mug-stoneware", "kettle-1l", "filter-paper-80", "honey-250g", "biscuits-oat")


class LiveSchedule:
    """When each event of the live feed happens; see the comment above. Times are ms since the Unix epoch."""

    def __init__(
        self,
        partitions: int = 4,
        rate: float = 50.0,
        burst: int = 500,
        burst_every_s: float = 10.0,
        started_ms: int | None = None,
    ) -> None:
        if partitions < 1 or rate < 0 or burst < 0 or burst_every_s <= 0:
            raise ValueError("live feed: partitions >= 1, rate >= 0, burst >= 0, burst interval > 0")
        self.partitions = partitions
        self.per_ms = rate / partitions / 1000.0  # steady events per ms, per partition
        self.burst = burst
        self.burst_every_ms = int(burst_every_s * 1000)
        self.started_ms = now_ms() if started_ms is None else started_ms
        # Where each partition's history starts (its newest event when the server started).
        self.first_seq = [self.head(p, self.started_ms) for p in range(partitions)]

    def head(self, p: int, t: int) -> int:
        """The number of events partition p holds at time t (the seq of its newest event)."""
        x = t - LIVE_EPOCH_MS
        if x < 0:
            return 0
        # Steady: events evenly spaced, partition p offset by p/partitions of the spacing.
        steady = int(x * self.per_ms + p / self.partitions) if self.per_ms > 0 else 0
        # Bursts: burst k at (k + 1/2) * interval, into partition k % partitions.
        last_k = (x - self.burst_every_ms // 2) // self.burst_every_ms
        bursts = (last_k - p) // self.partitions + 1 if last_k >= p else 0
        return steady + bursts * self.burst

    def at(self, p: int, seq: int, lo: int, hi: int) -> int:
        """The time of event seq of partition p: the first t in [lo, hi] with head(p, t) >= seq (head(p, hi) >= seq).

        Gallops up from lo, then bisects: consecutive events are close in time, so this is a few steps, not log(hi - lo).
        """
        if self.head(p, lo) >= seq:
            return lo
        step = 1  # invariant: head(p, lo) < seq <= head(p, hi)
        while lo + step < hi:
            if self.head(p, lo + step) >= seq:
                hi = lo + step
                break
            lo += step
            step *= 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.head(p, mid) >= seq:
                hi = mid
            else:
                lo = mid
        return hi


def live_event(p: int, seq: int, at: int) -> dict[str, Any]:
    """The data of event seq of partition p of the live feed: an order's life, deterministic in (p, seq)."""
    h = (seq * 2_654_435_761 + p * 40_503) & 0xFFFFFFFF  # a cheap deterministic hash for the fields
    order = f"ord-{p}{(seq // len(LIVE_TYPES)) % 100_000:05d}"
    data: dict[str, Any] = {
        "id": f"live-p{p}-{seq}",
        "seq": seq,
        "partition": p,
        "type": LIVE_TYPES[seq % len(LIVE_TYPES)],
        "at": at,
        "orderId": order,
        "customer": LIVE_CUSTOMERS[h % len(LIVE_CUSTOMERS)],
    }
    if data["type"] in ("order.created", "order.paid"):
        data["amount"] = {"value": 50 + h % 5000, "currency": "NOK"}
        data["items"] = [{"sku": LIVE_SKUS[(h >> 8) % len(LIVE_SKUS)], "qty": 1 + (h >> 16) % 4}]
    return data


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class LiveReader(CountedReader):
    """DataReader over the live schedule: pages of the events produced so far, checkpoints as /feed/v1's."""

    endpoint = "live"

    def __init__(self, schedule: LiveSchedule) -> None:
        self.schedule = schedule

    def start_after(self, p: int, cursor: str, head: int) -> int:
        first = self.schedule.first_seq[p]
        if cursor == "_first":
            return first
        if cursor == "_last":
            return head
        value = int(cursor)  # a bad cursor raises: the handler cuts the body
        if value > head:
            raise ValueError(f"live cursor {cursor!r} is beyond the newest event {head} of partition {p}")
        return max(value, first)  # older than this run's history: resume at its first event (a gap in seq)

    def lines(
        self, cursors: Sequence[Cursor], headers: Sequence[str] | None, page_size: int | None
    ) -> Generator[dict[str, Any], None, None]:
        s = self.schedule
        now = now_ms()
        per_cursor = page_size if page_size and page_size > 0 else DEFAULT_PAGE_SIZE
        for c in cursors:
            p = c.partition_id
            head = s.head(p, now)
            first = self.start_after(p, c.cursor, head) + 1
            last = min(first + per_cursor - 1, head)
            at = s.started_ms
            for seq in range(first, last + 1):
                at = s.at(p, seq, at, now)
                data = live_event(p, seq, at)
                yield event_line(p, data, headers, data["type"])
                if seq % CHECKPOINT_EVERY == 0 or seq == last:
                    yield {"cursor": str(seq), "partition": p}


def create_app(live: LiveSchedule | None = None) -> FastAPI:
    app = FastAPI(title="feedpump reference ZeroEventHub server", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"], allow_headers=["*"])

    feed = ZeroEventHubFastApiHandler(DatasetReader("feed"), PARTITIONS)
    ragged = ZeroEventHubFastApiHandler(DatasetReader("ragged", ragged=True), PARTITIONS)
    slow = ZeroEventHubFastApiHandler(SlowReader(), PARTITIONS)
    group = ZeroEventHubFastApiHandler(DatasetReader("group"), GROUP_PARTITIONS)
    expected_body = json.dumps(expected_dataset())
    schedule = live if live is not None else LiveSchedule()
    live_feed = ZeroEventHubFastApiHandler(LiveReader(schedule), schedule.partitions)

    @app.get("/feed/v1")
    def feed_route(request: Request):  # type: ignore[no-untyped-def]
        return feed.handle(request)

    @app.get("/group/v1")
    def group_route(request: Request):  # type: ignore[no-untyped-def]
        return group.handle(request)

    @app.get("/ragged/v1")
    def ragged_route(request: Request):  # type: ignore[no-untyped-def]
        return ragged.handle(request)

    @app.get("/slow/v1")
    def slow_route(request: Request):  # type: ignore[no-untyped-def]
        return slow.handle(request)

    @app.get("/live/v1")
    def live_route(request: Request):  # type: ignore[no-untyped-def]
        return live_feed.handle(request)

    @app.get("/live/heads")
    def live_heads_route():  # type: ignore[no-untyped-def]
        now = now_ms()
        return {
            "partitions": schedule.partitions,
            "startedMs": schedule.started_ms,
            "nowMs": now,
            "firstSeq": schedule.first_seq,
            "head": [schedule.head(p, now) for p in range(schedule.partitions)],
        }

    @app.get("/broken/v1")
    def broken_route(request: Request):  # type: ignore[no-untyped-def]
        return ZeroEventHubFastApiHandler(DatasetReader("broken", fail_after=BROKEN_DEFAULT_LINES), PARTITIONS).handle(
            request
        )

    @app.get("/broken/{k}/v1")
    def broken_k_route(k: int, request: Request):  # type: ignore[no-untyped-def]
        return ZeroEventHubFastApiHandler(DatasetReader("broken", fail_after=k), PARTITIONS).handle(request)

    @app.get("/expected")
    def expected_route():  # type: ignore[no-untyped-def]
        from fastapi.responses import Response

        return Response(expected_body, media_type="application/json")

    @app.get("/stats")
    def stats_route():  # type: ignore[no-untyped-def]
        return STATS.counts

    return app


app = create_app()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, port: int) -> None:
        super().__init__(config)
        self.port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            print(f"LISTENING {self.port}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8400, help="0 picks a free port")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin reaches EOF")
    parser.add_argument("--live-partitions", type=int, default=4, help="/live/v1: partitions (default 4)")
    parser.add_argument("--live-rate", type=float, default=50.0, help="/live/v1: steady events/s, all partitions (50)")
    parser.add_argument("--live-burst", type=int, default=500, help="/live/v1: events per burst (500; 0: none)")
    parser.add_argument("--live-burst-every", type=float, default=10.0, help="/live/v1: seconds between bursts (10)")
    args = parser.parse_args()
    live = LiveSchedule(args.live_partitions, args.live_rate, args.live_burst, args.live_burst_every)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    if args.exit_with_stdin:

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()

    config = uvicorn.Config(
        create_app(live), log_level=args.log_level, timeout_graceful_shutdown=2, access_log=args.log_level == "debug"
    )
    _Server(config, port).run(sockets=[sock])


if __name__ == "__main__":
    main()
