// Consumes a ZeroEventHub feed exactly once into a JSON file, with consume() and a small file-backed CursorStore:
// every batch's effects (here: event counts per partition) and its cursors are written together, as ONE atomic file
// replacement (write a temporary file, fsync, rename). Run it twice: the second run resumes from the stored cursors
// and applies nothing that was already applied.
//
//   node examples/node/consume.mjs [feedUrl] [partitionCount] [storeFile]
//   defaults: http://127.0.0.1:8400/feed/v1 (the demo's reference feed), 4, ./feedpump-state.json
//
// In this repository `'feedpump'` resolves to the built package itself (Node's package self-reference; run
// `npm run build` first). Elsewhere: `npm install feedpump-0.1.0.tgz` (from `npm pack`) beside this file.
import { open, readFile, rename } from 'node:fs/promises';
import { consume, FeedError } from 'feedpump';

const [url = 'http://127.0.0.1:8400/feed/v1', n = '4', file = 'feedpump-state.json'] = process.argv.slice(2);

/**
 * A CursorStore whose transaction is the whole file: `{ records: { [key]: CursorRecord }, data: { ... } }`. The
 * handler gets `tx` = a copy of `data` to change; the save writes it together with the new cursor record, or nothing.
 * One process at a time (a lock file or a database would be needed for more).
 */
function fileStore(path) {
  const read = async () => {
    try {
      return JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      if (e.code === 'ENOENT') return { records: {}, data: {} };
      throw e;
    }
  };
  return {
    async load(key) {
      return (await read()).records[key];
    },
    async save(key, record, effects, expected) {
      const state = await read();
      // The optimistic check of the CursorStore contract: nobody else committed since this consumer read the cursors.
      if (expected !== undefined && JSON.stringify(state.records[key] ?? null) !== JSON.stringify(expected)) {
        throw new FeedError('cursor-conflict', `cursor-conflict: ${path} changed under key ${key}`);
      }
      const data = structuredClone(state.data);
      if (effects) await effects(data); // a throw here leaves the file as it was
      const tmp = `${path}.${process.pid}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify({ records: { ...state.records, [key]: record }, data }));
        await fh.sync(); // durable before it becomes visible
      } finally {
        await fh.close();
      }
      await rename(tmp, path); // atomic: the old state or the new one, never half
    },
  };
}

const result = await consume(
  { url, partitionCount: Number(n), pageSizeHint: 1000 },
  {
    store: fileStore(file),
    key: 'example',
    handler: (batch, data) => {
      // The effects of the batch: counts per partition. A real consumer writes its own state here.
      data.applied ??= {};
      for (const { partition } of batch.events) data.applied[partition] = (data.applied[partition] ?? 0) + 1;
    },
  },
).catch((e) => {
  console.error(e instanceof FeedError ? `${e.code}: ${e.message}` : e);
  process.exit(1);
});

const applied = JSON.parse(await readFile(file, 'utf8').catch(() => '{"data":{}}')).data.applied ?? {};
const total = Object.values(applied).reduce((a, b) => a + b, 0);
console.log(`feed ${url} (${n} partitions), state in ${file}`);
console.log(`this run: ${result.events} events in ${result.batches} batches, started from ${result.start} cursors`);
console.log(`applied in total: ${total} events; per partition ${JSON.stringify(applied)}`);
console.log(`cursors: ${JSON.stringify(result.cursors)}`);
console.log(result.caughtUp ? 'caught up' : 'stopped before catching up');
