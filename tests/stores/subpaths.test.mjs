// The SQL stores live on their own subpaths: the package's main entry points never reach them (so the browser bundle
// does not grow and no driver is needed to import 'feedpump'), and each subpath imports no driver itself (it takes
// your Pool / Database / binding).
// Run: node --test tests/stores/subpaths.test.mjs
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { buildSync } from 'esbuild';
import { repoRoot } from '../interop/helpers.mjs';

const SUBPATHS = { postgres: 'dist/stores/postgres.js', sqlite: 'dist/stores/sqlite.js', d1: 'dist/stores/d1.js' };

function inputs(entry, platform) {
  const { metafile } = buildSync({ entryPoints: [path.join(repoRoot, entry)], absWorkingDir: repoRoot, bundle: true, write: false, metafile: true, format: 'esm', platform, logLevel: 'silent', external: ['node:*', '*.wasm'] });
  return Object.keys(metafile.inputs);
}

test('the main entry points (web, node, workerd) do not reach the SQL stores', () => {
  for (const [entry, platform] of [['web', 'browser'], ['node', 'node'], ['workerd', 'neutral']]) {
    const reached = inputs(`dist/entrypoints/${entry}.js`, platform).filter((f) => /stores\/(postgres|sqlite|d1|sql)\.js$/.test(f));
    assert.deepEqual(reached, [], `${entry} entry point`);
  }
});

test('each store subpath is in the exports map, bundles alone, and imports no driver', () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  for (const [name, file] of Object.entries(SUBPATHS)) {
    assert.deepEqual(pkg.exports[`./${name}`], { types: `./${file.replace(/\.js$/, '.d.ts')}`, default: `./${file}` });
    const reached = inputs(file, 'neutral');
    assert.ok(reached.every((f) => f.startsWith('dist/')), `${name}: only feedpump's own modules (${reached.join(', ')})`);
    assert.ok(!reached.some((f) => /wasm|entrypoints|feed\.js/.test(f)), `${name}: no wasm, no feed reader (${reached.join(', ')})`);
  }
  for (const driver of ['pg', 'better-sqlite3']) {
    assert.equal(pkg.peerDependencies[driver] !== undefined && pkg.peerDependenciesMeta[driver].optional, true, `${driver}: an optional peer dependency`);
    assert.equal(pkg.dependencies?.[driver], undefined);
  }
});

test('the examples of consume(), the stores and groups import only what their subpath exports', async () => {
  // TSDoc @example blocks and docs pages are what users copy: an import of a name that the subpath does not export
  // fails at load ("does not provide an export named ...").
  const files = [
    'js/src/consume.ts',
    ...['types', 'memory', 'indexeddb', 'durable-object', 'postgres', 'sqlite', 'd1'].map((f) => `js/src/stores/${f}.ts`),
    'js/src/group/index.ts',
    ...['indexeddb', 'durable-object'].map((f) => `js/src/entrypoints/${f}.ts`),
    'docs/consume.md',
    'docs/groups.md',
  ];
  const wrong = [];
  let imports = 0;
  for (const file of files) {
    const text = readFileSync(path.join(repoRoot, file), 'utf8');
    for (const [, names, from] of text.matchAll(/import \{([^}]*)\} from '(feedpump(?:\/[a-z-]+)?)'/g)) {
      const module = await import(from);
      for (const name of names.split(',').map((n) => n.trim()).filter((n) => n !== '' && !n.startsWith('type '))) {
        imports++;
        if (!(name in module)) wrong.push(`${file}: ${name} from '${from}'`);
      }
    }
  }
  assert.ok(imports > 20, `the examples were found (${imports} names)`);
  assert.deepEqual(wrong, []);
});
