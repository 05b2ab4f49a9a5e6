// The consumer process of tests/stores/kill-d1.test.mjs: Miniflare (workerd) runs tests/stores/d1-harness.js, the
// examples/workers-d1 consumer with chaos points, on a D1 database persisted in <persistDir>; this process calls
// POST /consume until caught up, then prints "done <status JSON>". A chaos point prints "kill <where>" and waits: the
// test SIGKILLs this process's group (this process and workerd) there.
//
//   node tests/stores/kill-d1-runner.mjs <feedUrl> <persistDir>
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { repoRoot } from '../interop/helpers.mjs';

const [feedUrl, persist] = process.argv.slice(2);
const say = (line) => new Promise((r) => process.stdout.write(`${line}\n`, r));

/** A module with `from 'feedpump'` / `'feedpump/d1'` pointed at dist/, as a bundler would resolve them. */
async function resolved(file) {
  const abs = path.join(repoRoot, file);
  const rel = (target) => {
    const r = path.relative(path.dirname(abs), path.join(repoRoot, target));
    return r.startsWith('.') ? r : `./${r}`;
  };
  const code = (await readFile(abs, 'utf8'))
    .replace(/from 'feedpump'/g, `from '${rel('dist/entrypoints/workerd.js')}'`)
    .replace(/from 'feedpump\/d1'/g, `from '${rel('dist/stores/d1.js')}'`);
  return { type: 'ESModule', path: abs, contents: code };
}

const modules = [await resolved('tests/stores/d1-harness.js'), await resolved('examples/workers-d1/src/consumer.js')];
for (const entry of await readdir(path.join(repoRoot, 'dist'), { recursive: true })) {
  const file = path.join(repoRoot, 'dist', entry);
  if (file.endsWith('.js')) modules.push({ type: 'ESModule', path: file });
  else if (file.endsWith('.wasm')) modules.push({ type: 'CompiledWasm', path: file });
}
const mf = new Miniflare({
  modules,
  modulesRoot: repoRoot,
  compatibilityDate: '2025-09-01',
  d1Databases: ['DB'],
  d1Persist: persist,
  bindings: { FEED_URL: feedUrl, CHAOS_RATE: process.env.CHAOS_RATE ?? '0' },
  serviceBindings: {
    KILLS: async (request) => {
      await say(`kill ${new URL(request.url).pathname.slice(1)}`);
      return new Promise(() => {}); // the test kills us
    },
  },
  host: '127.0.0.1',
  port: 0,
});
await mf.ready;
await say('ready');
for (;;) {
  const res = await mf.dispatchFetch('http://worker.test/consume', { method: 'POST' });
  const text = await res.text();
  if (!res.ok) throw new Error(`/consume: ${res.status} ${text.slice(0, 500)}`);
  if (JSON.parse(text).caughtUp) break;
}
const status = await (await mf.dispatchFetch('http://worker.test/status')).json();
await say(`done ${JSON.stringify(status)}`);
await mf.dispose();
process.exit(0);
