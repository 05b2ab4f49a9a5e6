// The README's usage example (the block after the `usage-example` marker) runs as written against the reference
// server: only the package specifier (-> dist/entrypoints/node.js) and the server origin are substituted.
// Run: node --test --test-force-exit tests/interop/readme.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startRefServer, repoRoot } from './helpers.mjs';
import { startV2Publisher } from './v2-publisher.mjs';
import { startV2Server } from '../v2_server/server.mjs';

let server;
before(async () => { server = await startRefServer(); });
after(() => server?.stop());

/** Runs the README block after `<!-- name ... -->` with node, against the reference server. */
async function runBlock(name, base = server.base) {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const m = new RegExp(`<!-- ${name}[^>]*-->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `README has a ${name} block`);
  const nodeEntry = pathToFileURL(path.join(repoRoot, 'dist/entrypoints/node.js')).href;
  const code = m[1]
    .replace(/from 'feedpump'/g, `from ${JSON.stringify(nodeEntry)}`)
    .replace(/http:\/\/127\.0\.0\.1:\d+/g, base);
  assert.ok(code.includes(base), 'the example names a loopback feed URL');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { stdout, stderr })) : resolve({ stdout, stderr }));
  });
}

test('README v2 example reads every partition of the v2 publisher with a server-side filter', async (t) => {
  const v2 = await startV2Publisher();
  try {
    const { stdout, stderr } = await runBlock('v2-example', v2.base);
    t.diagnostic(`v2 example printed: ${stdout.trim()}`);
    assert.equal(stderr.trim(), '');
    assert.match(stdout, /\{ 'Order\.Created': 10 \} \{ '0': '30', '1': '20', '7': '10' \}/);
  } finally {
    await v2.close();
  }
});

test('README registry example dispatches every event of the v2 reference server by type', async (t) => {
  const v2 = await startV2Server();
  try {
    const { stdout, stderr } = await runBlock('registry-example', v2.url);
    t.diagnostic(`registry example printed: ${stdout.trim()}`);
    assert.equal(stderr.trim(), '');
    const all = (await (await fetch(`${v2.url}/expected?feed=feed`)).json()).partitions;
    const types = Object.values(all).flat().map((e) => e.type);
    const n = (f) => types.filter(f).length;
    const kept = n((x) => !x.startsWith('Customer.'));
    const m = /^(\d+) \{ created: (\d+), amount: (\d+), payments: (\d+), other: (\d+) \}/.exec(stdout.trim());
    assert.ok(m, stdout);
    assert.equal(Number(m[1]), kept, 'every event the filter keeps was handled');
    assert.equal(Number(m[2]), n((x) => x === 'OrderCreated'));
    assert.equal(Number(m[4]), n((x) => x.startsWith('Payment.')));
    assert.equal(Number(m[5]), kept - Number(m[2]) - Number(m[4]));
  } finally {
    await v2.close();
  }
});

test('README live example catches up, goes live and ends when closed', async (t) => {
  const { stdout, stderr } = await runBlock('live-example');
  t.diagnostic(`live example printed: ${stdout.trim()}`);
  assert.equal(stderr.trim(), '');
  assert.match(stdout, /caught up, now live\n10000 events, then closed/);
});

test('README usage example runs against the reference server and catches up', async (t) => {
  const { stdout, stderr } = await runBlock('usage-example');
  t.diagnostic(`example printed: ${stdout.trim()}`);
  assert.equal(stderr.trim(), '');
  assert.match(stdout, /caught up after 10000 events/);
  assert.match(stdout, /'2500'/);
});

test('README quick start prints every event of the reference server, then the cursors to resume from', async () => {
  const { stdout, stderr } = await runBlock('quickstart-example');
  assert.equal(stderr.trim(), '');
  const lines = stdout.trim().split('\n');
  const events = lines.filter((l) => /^[0-3] /.test(l));
  assert.equal(events.length, 10000, 'one line per event');
  assert.match(lines.at(-1), /^caught up; resume later from \{ '0': '2500', '1': '2500', '2': '2500', '3': '2500' \}$/);
});
