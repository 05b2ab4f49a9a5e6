// A wasm module that cannot be loaded must not break the import (a top-level-await rejection no `try` can catch): the
// import succeeds and the first use of a feed fails with a FeedError, code 'wasm-load-failed', the original error as
// its cause. Each case runs in a fresh Node process, since a realm instantiates the wasm once.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, cpSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const dist = fileURLToPath(new URL('../../../dist', import.meta.url));

/** Imports `entry` of a copy of dist/ (after `spoil` damages it) and iterates a feed opened with `options` (JS
 * source); prints what happened. */
async function probe(entry, spoil = () => {}, options = "{ partitionCount: 1, fetch: async () => new Response('') }") {
  const dir = mkdtempSync(join(tmpdir(), 'wasm-load-'));
  try {
    cpSync(dist, join(dir, 'dist'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    spoil(join(dir, 'dist'));
    const code = `
      let result;
      try {
        const api = await import(${JSON.stringify(pathToFileURL(join(dir, 'dist', entry)).href)});
        try {
          const feed = api.openFeed('http://127.0.0.1:9/feed/v1', ${options});
          for await (const _ of feed);
          result = { imported: true, used: 'ok' };
        } catch (e) {
          result = { imported: true, used: e.name + ':' + e.code, feedError: api.isFeedError(e), cause: String(e.cause?.name), message: e.message };
        }
      } catch (e) {
        result = { imported: false, error: String(e) };
      }
      console.log(JSON.stringify(result));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], { cwd: dir, timeout: 60_000 });
    return JSON.parse(stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('web entry in a runtime that cannot fetch the .wasm (Node: file: URL): imports, then FeedError at first use', async () => {
  const r = await probe('entrypoints/web.js');
  assert.equal(r.imported, true, `the import threw: ${r.error}`);
  assert.equal(r.used, 'FeedError:wasm-load-failed');
  assert.equal(r.feedError, true);
  assert.match(r.message, /^wasm-load-failed: /);
  assert.match(r.message, /feedpump\/inline/, 'the message says what to do');
});

test('node entry with a broken .wasm file (an HTML page copied in its place): imports, then FeedError at first use', async () => {
  const r = await probe('entrypoints/node.js', (d) => writeFileSync(join(d, 'wasm', 'feedpump_bg.wasm'), '<!doctype html><title>404</title>'));
  assert.equal(r.imported, true, `the import threw: ${r.error}`);
  assert.equal(r.used, 'FeedError:wasm-load-failed');
  assert.equal(r.cause, 'CompileError');
});

test('node entry with the .wasm file missing: imports, then FeedError at first use', async () => {
  const r = await probe('entrypoints/node.js', (d) => rmSync(join(d, 'wasm', 'feedpump_bg.wasm')));
  assert.equal(r.imported, true, `the import threw: ${r.error}`);
  assert.equal(r.used, 'FeedError:wasm-load-failed');
});

test('the same entry with a good .wasm file works (the probe itself is sound)', async () => {
  assert.deepEqual(await probe('entrypoints/node.js', (d) => copyFileSync(join(dist, 'wasm', 'feedpump_bg.wasm'), join(d, 'wasm', 'feedpump_bg.wasm'))), { imported: true, used: 'ok' });
});

// The messages of refused options are the wasm's (src/options.rs optionError): options are still checked before the
// wasm is ready (bad-options), the message then names the check by number and says why the wasm is not there.
test('a refused option before the wasm is ready is bad-options all the same, saying why its message is missing', async () => {
  const broken = await probe('entrypoints/node.js', (d) => rmSync(join(d, 'wasm', 'feedpump_bg.wasm')), '{ partitionCount: 0 }');
  assert.equal(broken.used, 'FeedError:bad-options');
  assert.match(broken.message, /^bad-options: option check 4 \(its message is the wasm's\): wasm-load-failed: the WebAssembly module could not be loaded/);
  assert.equal(broken.cause, 'Error', 'the load failure is the cause');
  const bare = await probe('index.js', () => {}, '{ partitionCount: 0 }');
  assert.equal(bare.used, 'FeedError:bad-options');
  assert.match(bare.message, /^bad-options: option check 4 \(its message is the wasm's\): bad-options: the wasm module is not initialised; import 'feedpump'/);
  const loaded = await probe('entrypoints/node.js', () => {}, '{ partitionCount: 0 }');
  assert.equal(loaded.used, 'FeedError:bad-options');
  assert.equal(loaded.message, 'bad-options: partitionCount must be an integer >= 1');
});
