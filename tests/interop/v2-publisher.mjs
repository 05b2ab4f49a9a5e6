// A small scripted FeedAPI v2 publisher for tests (real HTTP on 127.0.0.1, CORS open): discovery with a closed
// partition, a child that startsAfterPartition it, a split child with cursorFromPartitions; events with
// `event-types` filtering; at least one cursor per response; an unknown command line; `data` sometimes a string; and
// a token that can be made to change after N events requests (answered with 409 from then on).
import { startScriptedServer } from '../fault/scripted-server.mjs';

/** partition id -> events (cursor = index + 1 as a string) */
export const LOG = {
  0: Array.from({ length: 30 }, (_, i) => ({ type: i % 3 === 0 ? 'Order.Created' : 'Order.Shipped', p: 0, i })),
  1: Array.from({ length: 20 }, (_, i) => ({ type: 'Order.Shipped', p: 1, i })),
  7: Array.from({ length: 10 }, (_, i) => (i % 2 ? `raw-${i}` : { type: 'Payment.Captured', p: 7, i })),
};

function discovery(token) {
  return {
    token,
    exactlyOnce: true,
    partitions: [
      { id: '1', startsAfterPartition: '0' },
      { id: '0', closed: true },
      { id: '7', cursorFromPartitions: ['3'] },
    ],
  };
}


/** Starts the publisher; `rotateTokenAfter(n)` makes the n+1-th events request (and all later ones with the old token) a 409. */
export async function startV2Publisher() {
  const state = { token: 't1', sinceRotation: 0, rotateAfter: Infinity };
  const server = await startScriptedServer({
    '/feed': () => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(discovery(state.token)) }),
    '/feed/events': (url) => {
      const q = url.searchParams;
      if (q.get('token') !== state.token) return { status: 409, body: 'token changed' };
      if (++state.sinceRotation > state.rotateAfter) {
        state.token = `t${Number(state.token.slice(1)) + 1}`;
        state.sinceRotation = 0;
        state.rotateAfter = Infinity;
        return { status: 409, body: 'token changed' };
      }
      const log = LOG[q.get('partition')];
      const cursor = q.get('cursor');
      const from = cursor === '_first' ? 0 : Number(cursor);
      const hint = Number(q.get('pagesizehint') ?? 4);
      const only = q.get('event-types')?.split(';');
      let body = '';
      let at = from;
      for (; at < Math.min(log.length, from + hint); at++) {
        const e = log[at];
        const type = typeof e === 'string' ? 'raw' : e.type;
        if (only && !only.includes(type)) continue;
        body += `${JSON.stringify({ data: e })}\n`;
      }
      // SPEC: every response carries at least one cursor, also when there is nothing new.
      body += `${JSON.stringify({ cursor: String(at) })}\n{"resync":"a future command, ignored"}\n`;
      return { body };
    },
  });
  return {
    base: server.base,
    requests: server.requests,
    token: () => state.token,
    rotateTokenAfter(n) {
      state.token = 't1';
      state.sinceRotation = 0;
      state.rotateAfter = n;
    },
    close: () => server.close(),
  };
}

/** What a full read from `_first` (partition 3's cursor given as '4') must deliver, as `partition:i` keys. */
export function expectedKeys() {
  return [
    ...LOG[0].map((e) => `0:${e.i}`),
    ...LOG[1].map((e) => `1:${e.i}`),
    ...LOG[7].slice(4).map((e) => `7:${typeof e === 'string' ? e : e.i}`),
  ];
}

/** The key of a delivered event: partition and index (or the string data). */
export const eventKey = (partition, data) => `${partition}:${typeof data === 'string' ? data : data.i}`;
