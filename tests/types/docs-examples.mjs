// The code users copy, type-checked against the built package's types (dist/*.d.ts, each subpath's "types" in the
// package's "exports"), as strict as the typecheck fixtures: every TSDoc `@example` of js/src (typedoc renders them)
// and every ```js / ```ts block of README.md and docs/*.md. A wrong option name, import path or subpath, return shape
// or an outdated API fails here; so does a link of README.md or docs/*.md to a repository file that does not exist,
// or to a heading that does not. Part of scripts/ci/types.sh, run with the repo's TypeScript and the oldest supported.
// Run: node tests/types/docs-examples.mjs [typescript-folder]   (needs dist/: scripts/build.sh)
//
// How a snippet becomes a module:
// - its own `import` lines stay at the top, and every other name the package exports (all subpaths) is imported;
// - a snippet with `export` stays at module level; any other runs in the body of an async function (top-level
//   `await`, `return` in a `catch` fragment, `this` in a Durable Object method's fragment);
// - a ```js block is JavaScript: what only TypeScript's types object to (a property of `unknown` data, of one member
//   of a union, of something possibly undefined; a parameter without a type) is not an error there (JS_LENIENT);
// - a property fragment (`onRetry: (info) => ...`) is checked as `{ <fragment> }` against the options type that has
//   that property (FRAGMENT_HOSTS); an object fragment (`{ maxMs: 5_000 }`) on an interface's member against that
//   interface; a `catch (e) { ... }` fragment after a `try {}`.
// - names a snippet uses without defining them (`url`, `saved`, `store`, `handler`, `apply`, `Order`) are the
//   placeholders declared in PLACEHOLDERS below: only names that are not the package's API belong there.
// Markdown blocks that are not code to copy are marked on the line before the fence: `<!-- not-code -->` (the wasm
// boundary's internal contract), or `<!-- signature: ConsumeOptions ConsumeResult -->` (an options summary with
// comments and `...`): then every property of the named interfaces must be in the block, and every `name:` / `name?:`
// the block lists must be a property of one of them (an option added, renamed or removed without the page).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'tests/types/docs-examples'); // virtual: nothing is written there
// The TypeScript to check with: the repo's (resolved from the repository root: tests/types/node_modules holds the
// oldest supported one), or the one whose package folder is the first argument (types.sh passes that oldest one).
const ts = createRequire(path.join(root, 'package.json'))(process.argv[2] ? path.resolve(process.argv[2]) : 'typescript');

if (!existsSync(path.join(root, 'dist/index.d.ts'))) {
  console.error('dist/ is missing: run scripts/build.sh first');
  process.exit(1);
}

// The subpaths users import from, and their value and type exports (from the built .d.ts, so a name the docs import
// that the subpath does not export fails as it does for a user).
const SUBPATHS = ['feedpump', 'feedpump/indexeddb', 'feedpump/durable-object', 'feedpump/postgres', 'feedpump/sqlite', 'feedpump/d1', 'feedpump/group', 'feedpump/otel'];

// Property fragments: which options type a bare `name: value` belongs to.
const FRAGMENT_HOSTS = {
  onMissingCursors: 'ConsumeOptions<any, any>',
  onHandlerError: 'ConsumeOptions<any, any>',
  onCommit: 'ConsumeOptions<Order, any>',
  onRole: 'ConsumeOptions<any, any>',
  onRevoke: 'GroupOptions<any, any>',
  requestHeaders: 'V1FeedOptions',
  // handler fragments: the transaction type is the one of the store the page documents
  'handler@js/src/stores/durable-object.ts': 'ConsumeOptions<any, DurableObjectTransactionLike>',
  'handler@js/src/stores/postgres.ts': 'ConsumeOptions<any, PgClientLike>',
};

// What the examples leave to the reader: values of the user's program. Not the package's API.
const PLACEHOLDERS = `
type F = typeof import('feedpump');
interface Order { id: string; orderId: string }
interface Customer { id: string }
declare const url: string;
declare let saved: any;
declare const saved0: string, saved1: string;
declare const primary: string, replica: string, primaryUrl: string, replicaUrl: string;
declare const badge: HTMLElement;
declare const store: any;
declare const source: import('feedpump').ConsumeSource;
declare const options: import('feedpump').ConsumeOptions<any, any>;
declare const handler: (batch: import('feedpump').Batch<any>, tx: any) => unknown;
declare const feed: import('feedpump').Feed<any>;
declare const batch: import('feedpump').Batch<any>;
declare const registry: ReturnType<F['createRegistry']>;
declare const member: import('feedpump/group').GroupMemberHandle;
declare const env: any;
declare const pool: any;
declare const myPool: any;
declare const client: import('feedpump/postgres').PgClientLike;
declare const db: any;
declare const myDb: { transaction(work: (tx: { saveCursor(partition: number, cursor: string): Promise<void> }) => Promise<void>): Promise<void> };
declare const tx: IDBTransaction;
declare const id: string;
declare const key: string;
declare const record: import('feedpump').CursorRecord;
declare const flags: { partitions?: string; protocol?: any };
declare const queue: { send(body: string): Promise<void> };
declare const histogram: { record(value: number, attributes?: object): void };
declare const metrics: { gauge(name: string, value: number): void };
declare const log: { warn(...args: unknown[]): void };
declare const pino: { warn(fields: object | undefined, message: string): void };
declare const e: unknown;
declare const MyClient: never; type MyClient = import('feedpump/postgres').PgClientLike;
declare function apply(...args: any[]): any;
declare function show(...args: any[]): void;
declare function render(...args: any[]): void;
declare function renderOrders(...args: any[]): void;
declare function makeProviders(env: unknown): { tracerProvider: any; meterProvider: any };
declare function refreshView(...args: any[]): void;
declare function handle(...args: any[]): void;
declare function save(...args: any[]): void;
declare function audit(...args: any[]): void;
declare function ship(...args: any[]): void;
declare function ready(): void;
declare function showLive(): void;
declare function showBanner(text: string): void;
declare function login(): Promise<void>;
declare function serverSaysFirstRun(): Promise<boolean>;
declare function token(options: { renew: boolean }): Promise<string>;
declare function getToken(): Promise<string>;
declare function myFetch(request: Request): Promise<Response>;
declare function parseOrder(data: unknown): Order;
declare function loadCursors(): Promise<import('feedpump').Cursors | undefined>;
declare function saveCursors(cursors: import('feedpump').Cursors): Promise<void>;
declare module '@opentelemetry/sdk-trace-node';
declare module '@opentelemetry/exporter-trace-otlp-http';
declare module 'cloudflare:workers' {
  export abstract class DurableObject<Env = any> {
    ctx: { storage: any };
    env: Env;
    constructor(ctx: unknown, env: Env);
  }
}
`;

/** Every `@example` block of js/src, with the declaration it documents. */
function tsdocExamples() {
  const out = [];
  const walkDir = (d) =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? (e.name === 'wasm' ? [] : walkDir(path.join(d, e.name))) : e.name.endsWith('.ts') ? [path.join(d, e.name)] : [],
    );
  for (const file of walkDir(path.join(root, 'js/src'))) {
    const rel = path.relative(root, file);
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node) => {
      for (const doc of node.jsDoc ?? []) {
        for (const tag of doc.tags ?? []) {
          if (tag.tagName.text !== 'example') continue;
          const text = ts.getTextOfJSDocComment(tag.comment) ?? '';
          const m = /^```ts\n([\s\S]*?)\n```/.exec(text.trim());
          if (!m) throw new Error(`${rel}:${sf.getLineAndCharacterOfPosition(tag.pos).line + 1}: an @example that is not one \`\`\`ts block`);
          const parent = ts.isPropertySignature(node) && ts.isInterfaceDeclaration(node.parent) ? node.parent : undefined;
          out.push({
            where: `${rel}:${sf.getLineAndCharacterOfPosition(tag.pos).line + 1}`,
            file: rel,
            lang: 'ts',
            code: m[1],
            // the interface whose member this documents (for `{ ... }` fragments), its type parameters as `any`
            host: parent && `${parent.name.text}${parent.typeParameters ? `<${parent.typeParameters.map(() => 'any').join(', ')}>` : ''}`,
          });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

/** Signature blocks (`<!-- signature: ConsumeOptions ConsumeResult -->`): not code, but their names are checked. */
const signatures = [];

/** Every ```js and ```ts block of README.md and docs/*.md not marked `<!-- not-code -->` or `<!-- signature -->`. */
function markdownExamples() {
  const out = [];
  const files = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  for (const rel of files) {
    const lines = readFileSync(path.join(root, rel), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^```(js|ts)\s*$/.exec(lines[i]);
      if (!open) continue;
      let j = i + 1;
      while (j < lines.length && lines[j] !== '```') j++;
      const signature = /<!-- signature: ([\w ]+) -->/.exec(lines[i - 1] ?? '');
      if (signature) signatures.push({ where: `${rel}:${i + 1}`, types: signature[1].trim().split(/\s+/), code: lines.slice(i + 1, j).join('\n') });
      else if (!/<!-- not-code/.test(lines[i - 1] ?? '')) out.push({ where: `${rel}:${i + 1}`, file: rel, lang: open[1], code: lines.slice(i + 1, j).join('\n') });
      i = j;
    }
  }
  return out;
}

/** The module text of one snippet. */
function toModule(ex, exportsOf) {
  let code = ex.code;
  const prop = /^(\w+): /.exec(code);
  if (prop && !/^(\w+):\s*(for|while|do)\b/.test(code)) {
    const host = FRAGMENT_HOSTS[`${prop[1]}@${ex.file}`] ?? FRAGMENT_HOSTS[prop[1]];
    if (!host) throw new Error(`${ex.where}: a fragment '${prop[1]}: ...' with no entry in FRAGMENT_HOSTS (tests/types/docs-examples.mjs)`);
    code = `const fragment: Partial<${host}> = {\n${code}\n};`;
  } else if (code.startsWith('{')) {
    if (!ex.host) throw new Error(`${ex.where}: an object fragment on something that is not an interface's member`);
    code = `const fragment: Partial<${ex.host}> = ${code};`;
  } else if (code.startsWith('catch')) {
    code = `try {} ${code}`;
  }
  const lines = code.split('\n');
  const importLines = lines.filter((l) => /^import\b/.test(l));
  const rest = lines.filter((l) => !/^import\b/.test(l)).join('\n');
  // names the package exports that the snippet does not import itself, each from the first subpath that has it: a
  // snippet in the middle of a page continues the page's imports; a name it imports from the wrong subpath still fails
  const own = new Set();
  for (const st of ts.createSourceFile('x.ts', importLines.join('\n'), ts.ScriptTarget.Latest).statements) {
    const c = st.importClause;
    if (c?.name) own.add(c.name.text);
    if (c?.namedBindings) {
      if (ts.isNamespaceImport(c.namedBindings)) own.add(c.namedBindings.name.text);
      else for (const e of c.namedBindings.elements) own.add(e.name.text);
    }
  }
  const seen = new Set(own);
  const auto = SUBPATHS.map((s) => {
    const names = exportsOf[s].filter((n) => !seen.has(n.name) && (seen.add(n.name), true));
    return names.length ? `import { ${names.map((n) => (n.type ? `type ${n.name}` : n.name)).join(', ')} } from '${s}';` : '';
  }).join('\n');
  const head = `${importLines.join('\n')}\n${auto}`;
  const body = /^export\b/m.test(rest) ? rest : `async function example(this: any) {\n${rest}\n}`;
  // `export {}`: a module even when it imports nothing; unused placeholders are fine
  return `${head}\n${body}\nexport {};\n`;
}

const options = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts', 'lib.dom.asynciterable.d.ts'],
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  types: ['node'],
  typeRoots: [path.join(root, 'node_modules/@types')],
  // as strict as the typecheck fixtures (tests/types/*/tsconfig.json): what a strict project of a user's sees
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitAny: true,
  noUnusedLocals: false,
  skipLibCheck: true,
  noEmit: true,
  // 'feedpump/...' as the package's "exports" map gives its types (the "types" condition of each subpath)
  paths: Object.fromEntries(
    Object.entries(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).exports)
      .filter(([, v]) => typeof v === 'object' && v.types)
      .map(([k, v]) => [k.replace(/^\./, 'feedpump'), [path.join(root, v.types)]]),
  ),
};

// Export names per subpath, from the package's .d.ts as users resolve them.
function subpathExports() {
  const probe = path.join(dir, 'probe.ts');
  const text = SUBPATHS.map((s, i) => `import * as m${i} from '${s}';`).join('\n') + '\nexport {};\n';
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  host.readFile = (f) => (f === probe ? text : read(f));
  const exists = host.fileExists.bind(host);
  host.fileExists = (f) => f === probe || exists(f);
  const program = ts.createProgram([probe], options, host);
  const checker = program.getTypeChecker();
  const out = {};
  const sf = program.getSourceFile(probe);
  sf.statements.filter(ts.isImportDeclaration).forEach((st, i) => {
    const sym = checker.getSymbolAtLocation(st.moduleSpecifier);
    if (!sym) throw new Error(`${SUBPATHS[i]} does not resolve from tests/types/ (is dist/ built?)`);
    out[SUBPATHS[i]] = checker.getExportsOfModule(sym).map((e) => {
      const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      const properties = target.flags & ts.SymbolFlags.Interface ? checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(target)).map((p) => p.name) : [];
      return { name: e.name, type: (target.flags & ts.SymbolFlags.Value) === 0, properties };
    });
  });
  return out;
}

const started = Date.now();
const exportsOf = subpathExports();
const examples = [...tsdocExamples(), ...markdownExamples()];
const files = new Map();
files.set(path.join(dir, 'placeholders.d.ts'), PLACEHOLDERS);
examples.forEach((ex, i) => {
  ex.path = path.join(dir, `example-${String(i).padStart(3, '0')}.ts`);
  ex.text = toModule(ex, exportsOf);
  files.set(ex.path, ex.text);
});
const host = ts.createCompilerHost(options);
const read = host.readFile.bind(host);
host.readFile = (f) => files.get(f) ?? read(f);
const exists = host.fileExists.bind(host);
host.fileExists = (f) => files.has(f) || exists(f);
const getSourceFile = host.getSourceFile.bind(host);
host.getSourceFile = (f, lang, ...rest) => (files.has(f) ? ts.createSourceFile(f, files.get(f), lang, true) : getSourceFile(f, lang, ...rest));
const program = ts.createProgram([...files.keys()], options, host);
// (7005, 7006, 7031, 7034, 7053: implicit any; 18046, 2571, 2365: unknown; 18047, 18048, 2532: possibly undefined)
const JS_LENIENT = new Set([7005, 7006, 7031, 7034, 7053, 18046, 2571, 2365, 18047, 18048, 2532]);
const byPath = new Map(examples.map((ex) => [ex.path, ex]));
const failures = [];
for (const d of ts.getPreEmitDiagnostics(program)) {
  const ex = d.file && byPath.get(d.file.fileName);
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
  if (!ex) {
    failures.push(`${d.file ? path.relative(root, d.file.fileName) : '(global)'}: ${message}`);
    continue;
  }
  // a ```js block: what only TypeScript's types object to (a property of `unknown` data, of one member of a union,
  // of something possibly undefined) works as JavaScript; a wrong name, option, import or call still fails
  if (ex.lang === 'js' && (JS_LENIENT.has(d.code) || (d.code === 2339 && / on type '[^']*\|/.test(message)))) continue;
  const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
  failures.push(`${ex.where}: ${message}\n    > ${ex.text.split('\n')[line]?.trim()}`);
}
// Signature blocks: the properties they list against the package's interfaces.
{
  const props = {};
  for (const t of new Set(signatures.flatMap((sig) => sig.types))) {
    const found = SUBPATHS.map((sp) => exportsOf[sp].find((e) => e.name === t)).find(Boolean);
    if (found) props[t] = found.properties;
  }
  for (const sig of signatures) {
    const known = new Set(sig.types.flatMap((t) => props[t] ?? []));
    for (const t of sig.types) {
      if (!props[t]?.length) failures.push(`${sig.where}: ${t} is not an interface the package exports`);
      for (const p of props[t] ?? []) if (!new RegExp(`\\b${p}\\b`).test(sig.code)) failures.push(`${sig.where}: ${t}.${p} is missing from the signature`);
    }
    for (const [, name] of sig.code.matchAll(/^\s*(\w+)\??[:,]/gm)) {
      if (!known.has(name)) failures.push(`${sig.where}: '${name}' is not a property of ${sig.types.join(' / ')}`);
    }
  }
}

// Every link of README.md and docs/*.md to a file of this repository (relative, or to its GitHub main branch) names
// one that exists: a moved or renamed file leaves no dead link behind.
let links = 0;
// GitHub's heading anchors: lower case, punctuation dropped (not '-' or '_'), each space a '-'
const anchors = (file) =>
  new Set(
    [...readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      m[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-'),
    ),
  );
for (const rel of ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]) {
  for (const [, target, anchor] of readFileSync(path.join(root, rel), 'utf8').matchAll(/\]\(([^)#\s]*)(?:#([^)\s]+))?\)/g)) {
    const repo = /^https:\/\/github\.com\/feedpump\/feedpump\/(?:blob|tree)\/main\/(.+)$/.exec(target);
    if (!repo && /^[a-z]+:/.test(target)) continue;
    links++;
    const file = target === '' ? path.join(root, rel) : repo ? path.join(root, repo[1]) : path.join(root, path.dirname(rel), target);
    if (!existsSync(file)) failures.push(`${rel}: a link to ${target}, which does not exist`);
    else if (anchor !== undefined && file.endsWith('.md') && !anchors(file).has(anchor)) failures.push(`${rel}: a link to ${target}#${anchor}: no such heading`);
  }
}
const counts = `${examples.length} examples (${examples.filter((e) => e.file.startsWith('js/')).length} TSDoc @example, ${examples.filter((e) => !e.file.startsWith('js/')).length} README/docs blocks) and ${links} links to repository files and their headings`;
if (failures.length) {
  console.error(`FAILED docs examples (TypeScript ${ts.version}): ${failures.length} errors in ${counts}\n${failures.join('\n')}`);
  process.exit(1);
}
console.log(`ok     docs examples: ${counts} type-check against dist/ with TypeScript ${ts.version} in ${Date.now() - started} ms`);
