/**
 * The CLI's exit codes, one per class of failure, and its help text (which lists them: one home for both).
 * @packageDocumentation
 */
import { isFeedError, type FeedErrorCode } from 'feedpump';

/** The exit codes of `feedpump`. */
export const EXIT = {
  /** Done: the feed caught up (or `--limit` was reached, or Ctrl-C ended a `--live` tail). */
  ok: 0,
  /** The command line is wrong (also `bad-options`). */
  usage: 1,
  /** The server answered with a non-2xx status (`http-status`). */
  http: 2,
  /** The server's answer breaks the protocol (`bad-line`, `bad-partition`, `bad-cursor`, ...). */
  protocol: 3,
  /** The network failed and retries gave up (`network`, `truncated-body`, `stalled-body`). */
  network: 4,
  /** Aborted (`aborted`). */
  aborted: 5,
  /** Any other `FeedError` (e.g. `wasm-load-failed`). */
  other: 6,
  /** A bug: an error that is not a `FeedError`. */
  internal: 70,
  /** A second Ctrl-C, which does not wait for the feed to close. */
  interrupted: 130,
} as const;

const BY_CODE: Partial<Record<FeedErrorCode, number>> = {
  'bad-options': EXIT.usage,
  'http-status': EXIT.http,
  'bad-line': EXIT.protocol,
  'bad-partition': EXIT.protocol,
  'bad-cursor': EXIT.protocol,
  'cursor-regressed': EXIT.protocol,
  'line-too-long': EXIT.protocol,
  'invalid-utf8': EXIT.protocol,
  'no-progress': EXIT.protocol,
  'bad-discovery': EXIT.protocol,
  network: EXIT.network,
  'truncated-body': EXIT.network,
  'stalled-body': EXIT.network,
  aborted: EXIT.aborted,
};

/** The exit code for an error that ended a run. */
export function exitCodeOf(e: unknown): number {
  return isFeedError(e) ? (BY_CODE[e.code] ?? EXIT.other) : EXIT.internal;
}

const codes = (n: number): string =>
  Object.entries(BY_CODE)
    .filter(([, v]) => v === n)
    .map(([k]) => k)
    .join(', ');

/** `feedpump --help`. */
export const HELP = `Usage: feedpump <command> <feed-url> [options]

Look at a ZeroEventHub (FeedAPI v1) or FeedAPI v2 event feed from a terminal.

Commands:
  tail <url>      print the feed's events (NDJSON on stdout by default) until it is caught up (or for ever, --live)
  cursors <url>   print the head cursors, as JSON: each partition read from _last up to its end

Options:
  -n, --partition-count <n>  the partition count of a v1 feed (v1 needs it; v2 discovers its partitions)
      --protocol v1|v2|auto  default: v1 with --partition-count, else auto (a v1 server refuses the bare GET)
      --from <where>         first (default for tail), last (default for cursors), or a JSON object of cursors
                             keyed by partition, e.g. '{"0":"1942","1":"_last"}' (what \`cursors\` prints);
                             a v1 server that answers _last with no checkpoint gives no position: a note says so
  -p, --partitions <list>    read only these partitions, e.g. 0,2
  -t, --type <pattern>       keep only events of this type (repeatable): an exact name, a prefix ending in *
                             ('Order*'), or a /regexp/flags; the type is read from data.type
      --headers <list>       event headers to ask the server for (ce_id,ce_type), or _all
  -H, --header <h>           a request header, "Name: value" (repeatable; e.g. authorization); never printed
      --live                 keep following the feed after it caught up (Ctrl-C ends it, exit code 0)
      --limit <n>            stop after n events
      --page-size <n>        the page size hint sent to the server
      --idle-timeout <ms>    a response that brings no bytes for this long (a v2 discovery answer: that does not
                             come whole) fails stalled-body and is retried (default 60000; 0: never)
  -f, --format ndjson|table  ndjson (default): {"partition","headers"?,"data"} per line; table: for people
      --progress             a progress line on stderr: events, events/s, each partition's cursor and the time
                             since its latest event (default: when stdout is a terminal); --no-progress: never
      --version              print the version
  -h, --help                 this text

Exit codes:
  ${EXIT.ok}    done: caught up, --limit reached, or Ctrl-C
  ${EXIT.usage}    usage: a wrong command line (${codes(EXIT.usage)})
  ${EXIT.http}    the server answered with an HTTP error (${codes(EXIT.http)})
  ${EXIT.protocol}    the server's answer breaks the protocol (${codes(EXIT.protocol)})
  ${EXIT.network}    the network failed and retries gave up (${codes(EXIT.network)})
  ${EXIT.aborted}    aborted (${codes(EXIT.aborted)})
  ${EXIT.other}    any other FeedError
  ${EXIT.internal}   an unexpected error (a bug: please report it)
  ${EXIT.interrupted}  a second Ctrl-C

Examples:
  feedpump tail http://127.0.0.1:8400/feed/v1 -n 4 --limit 10
  feedpump tail https://host/feed --type 'Order*' --format table --live
  feedpump cursors http://127.0.0.1:8400/feed/v1 -n 4
`;
