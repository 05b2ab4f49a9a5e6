// Bench only: which timed runs of a rounds-chromium.mjs harness plan a V8 GC fell in, from its LOG written with
// JSFLAGS `--trace-gc --trace-incremental-marking` (bench/NOTES.md, 2026-11-30).
//   node bench/profile/gc-attrib.mjs LOG CASE,CASE,…
// CASE,…: the plan's case keys in bench/workloads.js's job order (loopback cases, then memory, then the JSON.parse
// floor; e.g. `memory/fp-raw-events,memory/fp-raw-batches`): runVariant runs them rotated by one each round, and the
// page logs `CLK` at each run's start and end. Per case: the main-thread incremental marking steps, the mark-compact
// pauses and the scavenge pauses inside its runs, and its runs' wall times (from the log's timestamps) with and
// without a marking cycle under way. The first run of each case is left out (tier-up).
import { readFileSync } from 'node:fs';

const [log, casesArg] = process.argv.slice(2);
if (!log || !casesArg) throw new Error('usage: gc-attrib.mjs LOG CASE,CASE,…');
const cases = casesArg.split(',');
const n = cases.length;
/** ms of the day of a Chromium log line (`[pid:tid:MMDD/HHMMSS.micro:INFO:…`). */
const stamp = (line) => {
  const m = /\/(\d\d)(\d\d)(\d\d)\.(\d+):INFO/.exec(line);
  return m ? ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(`0.${m[4]}`) * 1000 : NaN;
};
const runs = [];
let cur;
let clk = 0;
let marking = false;
for (const line of readFileSync(log, 'utf8').split('\n')) {
  if (line.includes('"CLK ')) {
    if (clk % 2 === 0) {
      const i = runs.length;
      cur = { key: cases[((i % n) + Math.floor(i / n)) % n], t0: stamp(line), steps: 0, mc: 0, scavenge: 0, marking };
      runs.push(cur);
    } else {
      cur.ms = stamp(line) - cur.t0;
      cur = undefined;
    }
    clk++;
    continue;
  }
  if (line.includes('[IncrementalMarking] Start marking')) marking = true;
  const pause = /MB, ([0-9.]+) \//.exec(line);
  if (line.includes('Mark-Compact')) {
    marking = false;
    if (cur && pause) cur.mc += Number(pause[1]);
  }
  if (!cur) continue;
  if (marking) cur.marking = true;
  const step = /\[IncrementalMarking\] Step: origin: \w+ overall: ([0-9.]+)ms/.exec(line);
  if (step) cur.steps += Number(step[1]);
  if (line.includes('Scavenge') && pause) cur.scavenge += Number(pause[1]);
}
const median = (a) => (a.length ? [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(0) : '-');
for (const key of cases) {
  const rs = runs.filter((r) => r.key === key).slice(1);
  const sum = (f) => rs.reduce((a, r) => a + f(r), 0).toFixed(0);
  const gc = rs.filter((r) => r.marking || r.mc > 0);
  const clean = rs.filter((r) => !(r.marking || r.mc > 0));
  console.log(`${key.padEnd(26)} ${rs.length} runs: marking steps ${sum((r) => r.steps)} ms, mark-compact pauses ${sum((r) => r.mc)} ms, ` +
    `scavenges ${sum((r) => r.scavenge)} ms; ${gc.length} runs in a marking cycle (median ${median(gc.map((r) => r.ms))} ms), ` +
    `the others median ${median(clean.map((r) => r.ms))} ms`);
}
