// No import cycles in the TypeScript sources (js/src), type-only imports included: data flows one way (body ->
// framing -> batch -> parse -> iterator -> handler -> store), and a cycle is where that stops being true. Reads each
// file's imports with the TypeScript compiler's own pre-processor (no new tool), resolves the relative ones, and
// prints every cycle it finds (one per strongly connected set of modules); exits 1 if there is any.
// Usage: node scripts/cycles.mjs [dir]   (default js/src)
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..', 'js', 'src'));

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'wasm' ? [] : sources(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The module a relative specifier names (`./x.js` is `./x.ts` in the sources), or undefined if it is not ours. */
function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && candidate.startsWith(root) && !candidate.includes(`${join(root, 'wasm')}`)) return candidate;
  }
  return undefined;
}

const files = sources(root);
const edges = new Map(files.map((f) => [f, new Set()]));
for (const f of files) {
  const { importedFiles } = ts.preProcessFile(readFileSync(f, 'utf8'), true, true);
  for (const { fileName } of importedFiles) {
    const to = resolveImport(f, fileName);
    if (to !== undefined && edges.has(to)) edges.get(f).add(to);
  }
}

// Tarjan's strongly connected components: every component of more than one module (or a module importing itself) is
// a cycle.
let index = 0;
const stack = [];
const state = new Map();
const cycles = [];
function visit(v) {
  state.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of edges.get(v)) {
    if (!state.has(w)) {
      visit(w);
      state.get(v).low = Math.min(state.get(v).low, state.get(w).low);
    } else if (state.get(w).onStack) {
      state.get(v).low = Math.min(state.get(v).low, state.get(w).index);
    }
  }
  if (state.get(v).low === state.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      state.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || edges.get(v).has(v)) cycles.push(component);
  }
}
for (const f of files) if (!state.has(f)) visit(f);

const name = (f) => relative(root, f);
if (cycles.length === 0) {
  console.log(`cycles: none among ${files.length} modules of ${relative(process.cwd(), root) || '.'}`);
} else {
  for (const c of cycles) {
    const members = new Set(c);
    const lines = c.flatMap((f) => [...edges.get(f)].filter((t) => members.has(t)).map((t) => `${name(f)} -> ${name(t)}`));
    console.error(`import cycle among ${c.map(name).sort().join(', ')}:\n  ${lines.sort().join('\n  ')}`);
  }
  process.exit(1);
}
