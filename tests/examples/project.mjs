// What the example tests share: running a command with its output in the error, packing the tarball as a user's
// registry would serve it, and a copy of an example installed from that tarball.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../interop/helpers.mjs';
import { scriptWorker } from '../workerd/miniflare.mjs';

/** Runs a command with a time limit; its output is part of the error when it fails. */
export async function run(cmd, args, options = {}) {
  try {
    return await promisify(execFile)(cmd, args, { encoding: 'utf8', timeout: 180_000, ...options });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${e.message}):\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: e });
  }
}

/**
 * `npm pack` of the built dist/ into `work`; returns the tarball's path. `--ignore-scripts`: dist/ is built by the
 * build step, and prepack would build it again and print into the JSON output.
 */
export async function packTarball(work) {
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: repoRoot });
  return join(work, JSON.parse(stdout)[0].filename);
}

/**
 * A copy of `source` (default examples/<name>, without its package.json, which names the tarball by a path relative
 * to the repo) in `work/<name>`, with the tarball and `extra` packages installed (from the npm cache where it can).
 */
export async function exampleProject(work, tarball, name, extra = [], source = join(repoRoot, 'examples', name)) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  if (existsSync(source)) {
    cpSync(source, dir, {
      recursive: true,
      filter: (src) => !/[/\\](node_modules|dist|\.wrangler|package\.json|README\.md)$/.test(src),
    });
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `example-${name}`, private: true, type: 'module' }));
  // --prefer-offline: from the npm cache where it can. `npm ci` caches the tarballs of the lockfile but not the
  // registry's documents of the packages, which an install of `pg@<version>` needs: on a fresh machine those come
  // from the registry (--offline failed there with ENOTCACHED).
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', tarball, ...extra], { cwd: dir });
  return dir;
}

/** A wrangler `--dry-run` bundle in `outdir` (entry `worker.js`, wasm as compiled modules) started in Miniflare. */
export async function runInMiniflare(outdir, options) {
  const { Miniflare } = await import(join(repoRoot, 'node_modules', 'miniflare', 'dist', 'src', 'index.js'));
  return new Miniflare(scriptWorker(outdir, join(outdir, 'worker.js'), options));
}
