// Bench only: the top self-time functions of a .cpuprofile (node --cpu-prof), as % of all samples.
//   node bench/probe/top.mjs FILE.cpuprofile [N]
import { readFileSync } from 'node:fs';

const [file, n = '25'] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const dt = new Map();
// timeDeltas[i] is the time before sample i: attribute it to that sample's node.
for (let i = 0; i < prof.samples.length; i++) dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
const self = new Map();
let total = 0;
for (const node of prof.nodes) {
  const us = dt.get(node.id) ?? 0;
  if (us === 0) continue;
  const f = node.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(dist|bench|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
  const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
  self.set(key, (self.get(key) ?? 0) + us);
  total += us;
}
const idle = self.get('(idle)') ?? 0;
console.log(`total ${(total / 1000).toFixed(0)} ms sampled, of which idle ${(idle / 1000).toFixed(0)} ms; % of non-idle time:`);
for (const [key, us] of [...self].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, Number(n))) {
  console.log(`${((100 * us) / (total - idle)).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
}
