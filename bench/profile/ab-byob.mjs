// Bench only: an A/B of BYOB buffer sizes in one headless Chromium page over loopback, the renderer's main-thread
// task time per run (CDP `TaskDuration`, as bench/run.mjs measures Chromium), and the transport floor read with each.
//   node bench/profile/ab-byob.mjs [ROUNDS] [VARIANT] [KIB...]
// KIB: buffer sizes in KiB (default: 64 256). Runs alternate the sizes (floor, parsed, raw and filtered batches()
// for each) so every size sees the same load; prints the median and minimum of each, and each size's median as a share
// of the first size's.
import { chromium } from 'playwright-core';
import { buildFeed } from '../gen.js';
import { startBenchServer } from '../server.mjs';

const [rounds = '9', variant = 'ascii', ...kib] = process.argv.slice(2);
const sizes = (kib.length ? kib : ['64', '256']).map((k) => Number(k) * 1024);
const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
  const [api, body, gen, w] = await Promise.all([
    import('/dist/entrypoints/web.js'), import('/dist/reader/body.js'), import('/bench/gen.js'), import('/bench/workloads.js'),
  ]);
  window.run = async (kind, bytes) => {
    body.readBodiesInto(bytes);
    if (kind === 'floor') {
      const s = { bytes: 0, reads: 0 };
      await w.transportFloor((u) => fetch(u), location.origin + '/feed/${variant}', s, bytes);
      return s.bytes;
    }
    let n = 0;
    let x = 0;
    const filter = kind === 'filter' ? { filter: { include: [gen.FILTER_TYPE] } } : {};
    const mode = kind === 'raw' ? 'raw' : 'parsed';
    const feed = api.openFeed(location.origin + '/feed/${variant}', { partitionCount: gen.PARTITIONS, mode, retry: false, ...filter });
    for await (const b of feed.batches()) for (const e of b.events) { n++; x += mode === 'raw' ? e.raw.length : e.data.seq; }
    return n;
  };
  window.ready = true;
</script>`;

const feed = buildFeed({ events: 200_000, variant });
const bodyBytes = new TextEncoder().encode(feed.text).length;
const server = await startBenchServer({ events: 200_000, page: PAGE });
server.warm(variant);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
try {
  const page = await browser.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const busy = async () => 1000 * ((await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration')?.value ?? NaN);
  await page.goto(`${server.base}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
  const kinds = ['floor', 'parsed', 'raw', 'filter'];
  const cpu = new Map(kinds.flatMap((k) => sizes.map((s) => [`${k} ${s / 1024}`, []])));
  for (let r = -2; r < Number(rounds); r++) {
    for (const kind of kinds) {
      for (const size of r % 2 ? sizes : [...sizes].reverse()) {
        const c0 = await busy();
        const n = await page.evaluate(([k, s]) => window.run(k, s), [kind, size]);
        const c1 = await busy();
        if (n !== (kind === 'floor' ? bodyBytes : kind === 'filter' ? feed.kept : 200_000)) throw new Error(`${kind} ${size}: ${n}`);
        if (r >= 0) cpu.get(`${kind} ${size / 1024}`).push(c1 - c0);
      }
    }
  }
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  for (const kind of kinds) {
    const first = median(cpu.get(`${kind} ${sizes[0] / 1024}`));
    for (const size of sizes) {
      const v = cpu.get(`${kind} ${size / 1024}`);
      console.log(`${variant} ${kind} ${size / 1024} KiB: median ${median(v).toFixed(0)} ms (min ${Math.min(...v).toFixed(0)}), ${(median(v) / first).toFixed(3)} of ${sizes[0] / 1024} KiB`);
    }
  }
} finally {
  await browser.close();
  await server.close();
}
