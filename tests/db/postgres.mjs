// A throwaway PostgreSQL server for tests: `initdb` into a temp dir, `pg_ctl start` listening on a Unix socket in that
// dir (and, with `tcp: true`, on 127.0.0.1 at a free port), `pg_ctl -m immediate stop` and the dir removed at the end.
// As root (CI, this machine) the server runs as the `postgres` user: initdb and postgres refuse root. A watchdog
// process stops the server even when this process is SIGKILLed (a test timeout, a killed runner): tests/db/watchdog.test.mjs
// proves it for SIGKILL, SIGTERM, a grandchild left running and node --test's own timeout.
//
//   const pg = await startPostgres();
//   const pool = pg.pool();            // a pg.Pool on the server (closed by stop())
//   pg.connectionString, pg.config     // for your own clients
//   await pg.stop();                   // in an after()/finally: also when the test failed
//
// Binaries: PATH first, then Debian's /usr/lib/postgresql/<version>/bin (what `apt-get install postgresql` leaves).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** The directory of initdb / pg_ctl: PATH, else the newest Debian cluster version. */
export function postgresBinDir() {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, 'pg_ctl')) && existsSync(path.join(dir, 'initdb'))) return dir;
  }
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'pg_ctl'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup.sh (apt-get install postgresql)');
  return path.join(base, versions[0], 'bin');
}

/** A free TCP port on 127.0.0.1 (PostgreSQL cannot listen on port 0 itself). */
async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).on('error', reject));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary, as `postgres` when we are root. */
function pgCommand(bin, args) {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

/** Every server started and not yet stopped: stopped on exit too, so a crashed test leaves no server behind. */
const running = new Set();
process.on('exit', () => {
  for (const s of running) s.stopSync();
});

/**
 * Starts a server. `tcp: true` also listens on 127.0.0.1 (for clients that need TCP, e.g. workerd); otherwise the Unix
 * socket only. Resolves with { dir, socketDir, port, config, connectionString, pool(options), stop() }.
 */
export async function startPostgres({ tcp = false, database = 'postgres' } = {}) {
  const bin = postgresBinDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'feedpump-pg-'));
  const data = path.join(dir, 'data');
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const [initCmd, initArgs] = pgCommand(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  await run(initCmd, initArgs, { timeout: 60_000 });
  // A port is needed even for the socket alone (it names the socket file); TCP listens on it only with `tcp`.
  const port = await freePort();
  const settings = [
    `-c listen_addresses=${tcp ? '127.0.0.1' : "''"}`,
    `-p ${port}`,
    `-k ${dir}`,
    // A test server: the consumer is killed, never the server, so skipping fsync loses nothing the tests look at.
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=50',
  ].join(' ');
  const [ctlCmd, ctlArgs] = pgCommand(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o', settings, 'start']);
  try {
    await run(ctlCmd, ctlArgs, { timeout: 90_000 });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  // A watchdog outlives this process: when the pipe to it closes (we exited, were SIGKILLed or timed out, and no
  // 'exit' handler ran), it stops the server and removes the dir, so no server is left behind.
  const [stopCmd, stopArgs] = pgCommand(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
  const watchdog = spawn('sh', ['-c', 'cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$DIR"', 'watchdog', stopCmd, ...stopArgs], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
    env: { ...process.env, DIR: dir },
  });
  watchdog.unref();
  watchdog.stdin.on('error', () => {});
  watchdog.stdin.unref?.();
  const config = { host: dir, port, user: 'postgres', database };
  const pools = new Set();
  let stopped = false;
  const server = {
    dir,
    socketDir: dir,
    port,
    config,
    /** For node-postgres: the socket dir as `host` (URL-encoded), or 127.0.0.1 with `tcp`. */
    connectionString: tcp
      ? `postgresql://postgres@127.0.0.1:${port}/${database}`
      : `postgresql://postgres@${encodeURIComponent(dir)}:${port}/${database}`,
    /** A pg.Pool on this server; ended by stop(). */
    pool(options = {}) {
      const p = new pg.Pool({ ...config, ...options });
      // A killed backend (pg_terminate_backend in a test) must not crash the test process through an idle client.
      p.on('error', () => {});
      pools.add(p);
      return p;
    },
    /** Runs SQL as a superuser (setup, inspection). */
    async sql(text, values) {
      const client = new pg.Client(config);
      await client.connect();
      try {
        return await client.query(text, values);
      } finally {
        await client.end();
      }
    },
    stopSync() {
      if (stopped) return;
      stopped = true;
      running.delete(server);
      const [cmd, args] = pgCommand(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      try {
        execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
      watchdog.stdin.destroy();
    },
    async stop() {
      for (const p of pools) await p.end().catch(() => {});
      pools.clear();
      server.stopSync();
    },
  };
  running.add(server);
  return server;
}
