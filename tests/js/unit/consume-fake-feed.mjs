// A scripted ZeroEventHub (FeedAPI v1) answered by a `fetch` function, for the consume() unit tests. Partition p has
// events seq 1..count with data { id: `p<p>-<seq>`, seq, partition }; the cursor of seq s is String(s) and covers
// everything up to s. A page holds up to `pageSize` events per requested partition, round-robin, with a checkpoint
// after every `checkpointEvery`-th event and, unless `ragged`, after the last event of the page; with `ragged` the
// events after a page's last checkpoint must be held back by the client and fetched again. With `headers` every event
// carries `headers: { ce_id: 'h-p<p>-<seq>' }`.

export function fakeFeed({ partitions = 2, count = 20, checkpointEvery = 3, pageSize = 5, ragged = true, headers = false } = {}) {
  const requests = [];
  const fetch = async (request) => {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get('n'));
    if (n !== partitions) return new Response('bad n', { status: 400 });
    const asked = [];
    for (let p = 0; p < partitions; p++) {
      const c = url.searchParams.get(`cursor${p}`);
      if (c !== null) asked.push([p, c]);
    }
    requests.push(Object.fromEntries(asked));
    const plans = asked.map(([p, c]) => {
      const after = c === '_first' ? 0 : c === '_last' ? count : Number(c);
      return { p, first: after + 1, last: Math.min(after + pageSize, count) };
    });
    const lines = [];
    for (let step = 0; ; step++) {
      let any = false;
      for (const { p, first, last } of plans) {
        const seq = first + step;
        if (seq > last) continue;
        any = true;
        const event = { partition: p, data: { id: `p${p}-${seq}`, seq, partition: p } };
        lines.push(JSON.stringify(headers ? { partition: p, headers: { ce_id: `h-p${p}-${seq}` }, data: event.data } : event));
        if (seq % checkpointEvery === 0 || seq === count || (!ragged && seq === last)) {
          lines.push(JSON.stringify({ partition: p, cursor: String(seq) }));
        }
      }
      if (!any) break;
    }
    return new Response(lines.map((l) => `${l}\n`).join(''), { status: 200, headers: { 'content-type': 'application/x-ndjson' } });
  };
  return { fetch, requests, url: 'http://feed.test/feed/v1' };
}
