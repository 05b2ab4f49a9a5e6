// Bench only: the shell probe's comparison table (bench/NOTES.md, "Shell probe") from saved runs of
// `npm run bench -- --probe --out=FILE.md` (their FILE.json). Per runtime, variant, transport and workload: the Rust
// shell's and the probe's median wall and CPU time with their ranges, and the Rust/probe ratio of each round's pair
// (the cases run interleaved, so a round's two runs saw about the same load; the median of those ratios is the
// steadier figure on a busy machine).
//   node bench/probe/compare.mjs [--compact] RUN.json [RUN.json …]   (--compact: CPU-first, fewer columns)
import { readFileSync } from 'node:fs';

const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const range = (xs, d = 0) => `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;
const f0 = (x) => Math.round(x).toLocaleString('en-US');

const compact = process.argv.includes('--compact');
for (const file of process.argv.slice(2).filter((a) => a !== '--compact')) {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  console.log(`Run of ${r.started} (${f0(r.cfg.events)} events, ${r.cfg.reps} rounds after ${r.cfg.warmup} warm-up; load average before ${r.loadBefore}, after ${r.loadAfter})\n`);
  if (compact) {
    console.log('| runtime | variant | transport | workload | CPU ms, Rust shell -> probe | Rust/probe CPU, paired (range) | Rust/probe wall, paired | CPU vs plain loop, Rust / probe |');
    console.log('|---|---|---|---|---:|---:|---:|---:|');
  } else console.log('| runtime | variant | transport | workload | Rust shell: wall ms (range) | CPU ms (range) | probe: wall ms (range) | CPU ms (range) | Rust/probe wall, paired (range) | Rust/probe CPU, paired (range) | vs plain loop, Rust / probe: wall | CPU |');
  if (!compact) console.log('|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const refs = [];
  for (const [rt, vs] of Object.entries(r.runtimes)) {
    for (const v of vs) {
      const res = v.results;
      for (const t of ['loopback', 'memory']) {
        const b = res[`${t}/baseline`];
        const tf = res[`${t}/transport`];
        const fl = res['floor/json-parse'];
        if (b && tf && fl) {
          refs.push(`| ${rt} | ${v.variant} | ${t} | ${f0(b.ms)} (${range(b.times)}) | ${b.cpuMs === undefined ? '' : `${f0(b.cpuMs)} (${range(b.cpu)})`} | ${f0(tf.ms)} (${range(tf.times)}) | ${tf.cpuMs === undefined ? '' : f0(tf.cpuMs)} | ${tf.reads === undefined ? '' : f0(tf.reads)} | ${f0(fl.ms)} |`);
        }
        for (const w of ['events', 'batches', 'raw-events', 'raw-batches']) {
          const a = res[`${t}/fp-${w}`];
          const p = res[`${t}/probe-${w}`];
          if (!a || !p) continue;
          const pair = a.times.map((x, i) => x / p.times[i]);
          const cpair = a.cpu.map((x, i) => x / p.cpu[i]);
          const cpu = (x) => (x.cpuMs === undefined ? '' : `${f0(x.cpuMs)} (${range(x.cpu)})`);
          const name = w.startsWith('raw') ? `raw ${w.slice(4)}()` : `parsed ${w}()`;
          const vsBase = b ? `${(b.ms / a.ms).toFixed(2)}x / ${(b.ms / p.ms).toFixed(2)}x` : '';
          const vsBaseCpu = b && b.cpuMs && a.cpuMs && p.cpuMs ? `${(b.cpuMs / a.cpuMs).toFixed(2)}x / ${(b.cpuMs / p.cpuMs).toFixed(2)}x` : '';
          if (compact) {
            console.log(`| ${rt} | ${v.variant} | ${t} | ${name} | ${f0(a.cpuMs)} -> ${f0(p.cpuMs)} | ${med(cpair).toFixed(2)} (${range(cpair, 2)}) | ${med(pair).toFixed(2)} | ${vsBaseCpu} |`);
            continue;
          }
          console.log(`| ${rt} | ${v.variant} | ${t} | ${name} | ${f0(a.ms)} (${range(a.times)}) | ${cpu(a)} | ${f0(p.ms)} (${range(p.times)}) | ${cpu(p)} | ${med(pair).toFixed(2)} (${range(pair, 2)}) | ${cpair.length ? `${med(cpair).toFixed(2)} (${range(cpair, 2)})` : ''} | ${vsBase} | ${vsBaseCpu} |`);
        }
      }
    }
  }
  console.log('\nThe references of the same run:\n');
  console.log('| runtime | variant | transport | plain loop: wall ms (range) | CPU ms (range) | transport floor: wall ms (range) | CPU ms | reads per run | JSON.parse floor ms |');
  console.log('|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const line of refs) console.log(line);
  console.log('');
}
