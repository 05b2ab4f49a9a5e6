// Shortens the names of the wasm module's imports from its JS glue (and of the exports it only calls) (wasm-bindgen's `__wbg_<name>_<16 hex digits>`,
// about 1 KB of brotli in every JS bundle, the hex being incompressible) to `w0`, `w1`, …, in both the .wasm import
// section and the glue's import object. Run by scripts/build.sh after wasm-opt. Usage:
//   node scripts/short-imports.mjs <feedpump_bg.wasm> <feedpump.js>
// A name is renamed only where the glue spells it once (as the key of its import function), so nothing else refers
// to it; the script fails on anything it does not expect rather than write a module that cannot link.
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, jsPath] = process.argv.slice(2);
if (!wasmPath || !jsPath) throw new Error('usage: node scripts/short-imports.mjs <feedpump_bg.wasm> <feedpump.js>');
const MODULE = './feedpump_bg.js';
const wasm = readFileSync(wasmPath);
let js = readFileSync(jsPath, 'utf8');

function leb(buf, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = buf[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return [value, at];
  }
}

function encodeLeb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const name = (s) => Buffer.concat([encodeLeb(Buffer.byteLength(s)), Buffer.from(s)]);

if (wasm.readUInt32LE(0) !== 0x6d736100) throw new Error(`${wasmPath} is not a wasm module`);
const parts = [wasm.subarray(0, 8)];
const renamed = new Map();
let used = 0;
let exported = 0;
const keys = new Set([...js.matchAll(/^\s+([A-Za-z_$][\w$]*): function\(/gm)].map((m) => m[1]));
let at = 8;
while (at < wasm.length) {
  const id = wasm[at];
  const [size, body] = leb(wasm, at + 1);
  const end = body + size;
  if (id === 7) {
    // Exports: the closure invokers' `…_h<16 hex digits>` names, read by the glue as `wasm.<name>`, become x0, x1, ….
    let [count, p] = leb(wasm, body);
    const out = [encodeLeb(count)];
    for (let i = 0; i < count; i++) {
      const [len, n0] = leb(wasm, p);
      const field = wasm.toString('utf8', n0, n0 + len);
      const descStart = n0 + len;
      p = leb(wasm, descStart + 1)[1];
      let short = field;
      // Every other export the glue only calls (`wasm.core_poll(…)`: the methods of the classes, their `free`, the
      // free functions such as `wasm.optionError(…)`, whose JS wrapper of the same name keeps it, and the runtime's
      // `wasm.__wbindgen_start()` and `wasm.__wbindgen_exn_store(…)`) is renamed too: its name is spelled once per
      // call in every bundle. One the glue reads in any other way (`wasm.memory`, `wasm.__wbindgen_malloc` passed as a
      // value, the `wasm.__wbindgen_externrefs` table) keeps its name.
      const reads = js.match(new RegExp(`wasm\\.${field}(?![\\w$])`, 'g'))?.length ?? 0;
      const calls = js.split(`wasm.${field}(`).length - 1;
      if (/_h[0-9a-f]{16}$/.test(field) || (calls > 0 && calls === reads)) {
        do short = `x${(exported++).toString(36)}`;
        while (js.includes(`wasm.${short}`));
        if (!js.includes(`wasm.${field}(`)) throw new Error(`${jsPath} never calls wasm.${field}`);
        js = js.split(`wasm.${field}(`).join(`wasm.${short}(`);
        if (new RegExp(`wasm\\.${field}(?![\\w$])`).test(js)) throw new Error(`${jsPath} reads wasm.${field} other than by a call`);
      }
      out.push(name(short), wasm.subarray(descStart, p));
    }
    if (p !== end) throw new Error('the export section was not read to its end');
    const section = Buffer.concat(out);
    parts.push(Buffer.from([7]), encodeLeb(section.length), section);
    at = end;
    continue;
  }
  if (id !== 2) {
    parts.push(wasm.subarray(at, end));
    at = end;
    continue;
  }
  let p = body;
  const [count, first] = leb(wasm, p);
  p = first;
  const out = [encodeLeb(count)];
  for (let i = 0; i < count; i++) {
    const [mlen, m0] = leb(wasm, p);
    const module = wasm.toString('utf8', m0, m0 + mlen);
    const [flen, f0] = leb(wasm, m0 + mlen);
    const field = wasm.toString('utf8', f0, f0 + flen);
    p = f0 + flen;
    const kind = wasm[p++];
    const descStart = p - 1;
    if (kind === 0x00 || kind === 0x04) {
      if (kind === 0x04) p++;
      p = leb(wasm, p)[1];
    } else if (kind === 0x01 || kind === 0x02) {
      if (kind === 0x01) p++; // reference type
      const flags = wasm[p++];
      p = leb(wasm, p)[1];
      if (flags & 1) p = leb(wasm, p)[1];
    } else if (kind === 0x03) {
      p += 2;
    } else {
      throw new Error(`import ${module}.${field}: unknown kind ${kind}`);
    }
    let short = field;
    const once = js.split(field).length === 2;
    if (module === MODULE && kind === 0x00 && keys.has(field) && once) {
      do short = `w${(used++).toString(36)}`;
      while (keys.has(short) || js.includes(short + ':'));
      renamed.set(field, short);
    }
    out.push(name(module), name(short), wasm.subarray(descStart, p));
  }
  if (p !== end) throw new Error('the import section was not read to its end');
  const section = Buffer.concat(out);
  parts.push(Buffer.from([2]), encodeLeb(section.length), section);
  at = end;
}
for (const [field, short] of renamed) {
  const key = new RegExp(`^(\\s+)${field}: function\\(`, 'm');
  if (!key.test(js)) throw new Error(`${jsPath}: no import function ${field}`);
  js = js.replace(key, `$1${short}: function(`);
}
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(jsPath, js);
console.log(`short-imports: ${renamed.size} import and ${exported} export names shortened`);
