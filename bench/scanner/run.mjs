// A focused microbench of the envelope scanner in wasm: the bench feed's lines (bench/gen.js, 20k events) skipped
// 16 bytes at a time (simd128) vs byte by byte, and classified, in interleaved rounds with the order rotated.
// Build first: (cd bench/scanner && cargo build --release --target wasm32-unknown-unknown --target-dir ../../target/bench-scanner)
// Run: node bench/scanner/run.mjs [ascii|mixed] [rounds] [module.wasm, e.g. after wasm-opt -Oz as scripts/build.sh does]
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { buildFeed } from '../gen.js';

const variant = process.argv[2] ?? 'ascii';
const rounds = Number(process.argv[3] ?? 21);
const wasm = readFileSync(
  process.argv[4] ?? new URL('../../target/bench-scanner/wasm32-unknown-unknown/release/scanner_bench.wasm', import.meta.url),
);
const { instance } = await WebAssembly.instantiate(wasm, {});
const { buf, run, memory } = instance.exports;
const bytes = new TextEncoder().encode(buildFeed({ events: 20_000, variant }).text);
const ptr = buf(bytes.length);
new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);

const modes = ['blocks (simd128)', 'bytes (before)', 'classify_v1 (blocks)'];
if (run(0) !== run(1)) throw new Error('the block and byte scans disagree');
for (let i = 0; i < 5; i++) for (let m = 0; m < modes.length; m++) run(m); // warm-up
const times = modes.map(() => []);
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < modes.length; k++) {
    const m = (r + k) % modes.length;
    const t0 = performance.now();
    run(m);
    times[m].push(performance.now() - t0);
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${variant}, ${bytes.length} bytes, ${rounds} rounds, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (let m = 0; m < modes.length; m++) {
  const xs = times[m];
  const mb = bytes.length / 1e6 / (med(xs) / 1e3);
  console.log(`${modes[m].padEnd(22)} median ${med(xs).toFixed(2)} ms (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}), ${mb.toFixed(0)} MB/s`);
}
console.log(`bytes / blocks: ${(med(times[1]) / med(times[0])).toFixed(2)}x`);
