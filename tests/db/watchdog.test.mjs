// The throwaway PostgreSQL server of tests/db/postgres.mjs must not outlive the process that started it, however that
// process ends: SIGKILL (a killed runner), SIGTERM (what `timeout` and a test runner's timeout send: no 'exit'
// handler runs), or an uncaught exception. Each case starts a server in a child process, ends the child that way, and
// checks that the server is gone within a few seconds (its postmaster process no longer exists, its dir is removed).
// Run: node --test tests/db/watchdog.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const HARNESS = new URL('./postgres.mjs', import.meta.url).href;

/** A child that starts a server, prints `READY <dir> <postmaster pid>`, then does what `then` says. */
function child(then) {
  const code = `
    import { startPostgres } from ${JSON.stringify(HARNESS)};
    import { readFileSync } from 'node:fs';
    const pg = await startPostgres();
    const pool = pg.pool({ max: 1 });
    await pool.query('SELECT 1');
    const pid = readFileSync(pg.dir + '/data/postmaster.pid', 'utf8').split('\\n')[0];
    console.log('READY ' + pg.dir + ' ' + pid);
    ${then}
    setInterval(() => {}, 1000);
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /READY (\S+) (\d+)/.exec(out);
      if (m) resolve({ dir: m[1], pid: Number(m[2]) });
    });
    proc.on('exit', (code, signal) => reject(new Error(`the child ended before its server was ready (${code ?? signal})`)));
  });
  return { proc, ready };
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

/** Waits up to `ms` for the postmaster to exit and its dir to be removed. */
async function gone({ dir, pid }, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid) && !existsSync(dir)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

for (const [name, then, kill] of [
  ['SIGKILL of the process that started it', '', 'SIGKILL'],
  ['SIGTERM (a timeout): no exit handler runs', '', 'SIGTERM'],
  // A grandchild that inherited stdio and outlives its parent must not keep the watchdog's pipe open.
  ['SIGKILL while a grandchild it started lives on', "(await import('node:child_process')).spawn('sleep', ['30'], { stdio: 'inherit' }).unref();", 'SIGKILL'],
]) {
  test(`the server stops within seconds after ${name}`, async () => {
    const { proc, ready } = child(then);
    const server = await ready;
    assert.ok(alive(server.pid), 'the server runs');
    assert.ok(existsSync(path.join(server.dir, 'data')), 'its data dir exists');
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    if (kill !== undefined) proc.kill(kill);
    await exited;
    const ok = await gone(server);
    if (!ok) {
      // Leave nothing behind, whatever the outcome.
      try {
        process.kill(server.pid, 'SIGQUIT');
      } catch {}
    }
    assert.ok(ok, `the server (pid ${server.pid}, ${server.dir}) still runs 10 s after the process that started it ended`);
  });
}

test("the server stops after node --test's timeout cancels a test that never ends (no after hook runs)", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'feedpump-wd-'));
  try {
    const file = path.join(dir, 'hang.test.mjs');
    writeFileSync(
      file,
      `import { before, test } from 'node:test';
       import { readFileSync, writeFileSync } from 'node:fs';
       import { startPostgres } from ${JSON.stringify(HARNESS)};
       before(async () => {
         const pg = await startPostgres();
         await pg.pool({ max: 1 }).query('SELECT 1');
         const pid = readFileSync(pg.dir + '/data/postmaster.pid', 'utf8').split('\\n')[0];
         writeFileSync(${JSON.stringify(path.join(dir, 'info'))}, pg.dir + ' ' + pid);
       });
       test('never ends', { timeout: 1000 }, () => new Promise(() => {}));
      `,
    );
    // A runner of its own (a nested one would report to this run instead of running the file).
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const runner = spawn(process.execPath, ['--test', file], { stdio: 'ignore', env });
    await new Promise((resolve) => runner.once('exit', resolve));
    const [serverDir, pid] = readFileSync(path.join(dir, 'info'), 'utf8').split(' ');
    assert.ok(await gone({ dir: serverDir, pid: Number(pid) }), `the server (pid ${pid}) still runs after the timed-out test run ended`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
