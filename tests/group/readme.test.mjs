// The README's consumer-group example (the block after the `group-example` marker) runs as written against a
// throwaway PostgreSQL server and the reference server: only the server origin is substituted, and DATABASE_URL set.
// Run: node --test --test-force-exit tests/group/readme.test.mjs
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startPostgres } from '../db/postgres.mjs';
import { repoRoot, startRefServer } from '../interop/helpers.mjs';

let pg;
let ref;
before(async () => {
  [pg, ref] = await Promise.all([startPostgres(), startRefServer()]);
});
after(async () => {
  await Promise.all([pg?.stop(), ref?.stop()]);
});

test('README consumer-group example: two members share the 8 partitions, every order stored once', async (t) => {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const m = /<!-- group-example[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a group-example block');
  const code = m[1].replace(/http:\/\/127\.0\.0\.1:\d+/g, ref.base);
  assert.ok(code.includes(ref.base), 'the example names a loopback feed URL');
  const { stdout, stderr } = await new Promise((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', code], { cwd: repoRoot, timeout: 120_000, env: { ...process.env, DATABASE_URL: pg.connectionString } }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { stdout, stderr })) : resolve({ stdout, stderr }),
    ),
  );
  t.diagnostic(`group example printed: ${stdout.trim().split('\n').join(' | ')}`);
  assert.equal(stderr.trim(), '');
  assert.match(stdout, /^orders: 20000$/m);
  for (let p = 0; p < 8; p++) assert.match(stdout, new RegExp(`^partition ${p}: [ab] at 2500$`, 'm'));
  assert.match(stdout, /^a reads /m);
  assert.match(stdout, /^b reads /m);
  const { rows } = await pg.sql('SELECT count(*)::int AS n FROM orders');
  assert.equal(rows[0].n, 20000);
});
