// Takes out of the wasm-bindgen glue (js/src/wasm/feedpump.js, `--target web`) the code feedpump never runs, which a
// bundler keeps because it cannot tell: every entry point instantiates through js/src/runtime.ts's loadWasmSync,
// which calls `initSync({ module })` and nothing else of the loader, and no code of ours disposes a wasm object with
// `using`. Run by scripts/build.sh after short-imports.mjs. Usage:
//   node scripts/trim-glue.mjs <feedpump.js> <feedpump.d.ts>
// Each cut names the exact text it expects: when a wasm-bindgen upgrade changes it, the script fails (and says which
// cut) instead of shipping glue it did not check.
import { readFileSync, writeFileSync } from 'node:fs';

const [jsPath, dtsPath] = process.argv.slice(2);
if (!jsPath || !dtsPath) throw new Error('usage: node scripts/trim-glue.mjs <feedpump.js> <feedpump.d.ts>');

/** Replaces `from` (which must occur exactly `count` times) by `to` in `text`. */
function cut(text, what, from, to, count = 1) {
  const found = text.split(from).length - 1;
  if (found !== count) {
    throw new Error(`trim-glue: ${what}: expected ${count} occurrence(s) of ${JSON.stringify(from)}, found ${found}`);
  }
  return text.split(from).join(to);
}

let js = readFileSync(jsPath, 'utf8');
let dts = readFileSync(dtsPath, 'utf8');

// initSync takes only `{ module }` (runtime.ts's one call): the deprecated bare-module form and its console.warn go.
js = cut(
  js,
  'initSync: deprecated bare-module argument',
  `    if (module !== undefined) {
        if (Object.getPrototypeOf(module) === Object.prototype) {
            ({module} = module)
        } else {
            console.warn('using deprecated parameters for \`initSync()\`; pass a single object instead')
        }
    }
`,
  `    ({module} = module);
`,
);
dts = cut(
  dts,
  'initSync: its type',
  'export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;',
  'export function initSync(module: { module: SyncInitInput }): InitOutput;',
);

// `using` disposal of the wasm classes (Backoff, Core, Schedule): nothing of ours uses it (they are internal and
// freed with free()).
for (const name of ['Backoff', 'Core', 'Schedule']) {
  js = cut(js, `${name}: Symbol.dispose`, `if (Symbol.dispose) ${name}.prototype[Symbol.dispose] = ${name}.prototype.free;\n`, '');
}
if (js.includes('Symbol.dispose')) throw new Error('trim-glue: Symbol.dispose: a class this script does not know');
dts = cut(dts, 'Symbol.dispose: its types', '    [Symbol.dispose](): void;\n', '', 3);

// `__destroy_into_raw()`, which the glue also calls when a class instance is passed by value to Rust (none of ours
// is): its one caller, free(), does the same itself (the method's name is spelled in every bundle).
for (const name of ['Backoff', 'Core', 'Schedule']) {
  const from = new RegExp(
    String.raw`    __destroy_into_raw\(\) \{
        const ptr = this\.__wbg_ptr;
        this\.__wbg_ptr = 0;
        ${name}Finalization\.unregister\(this\);
        return ptr;
    \}
    free\(\) \{
        const ptr = this\.__destroy_into_raw\(\);
        (wasm\.\w+\(ptr, 0\);)
    \}
`,
  );
  if (!from.test(js)) throw new Error(`trim-glue: ${name}: __destroy_into_raw: not the text expected`);
  js = js.replace(
    from,
    `    free() {
        const ptr = this.__wbg_ptr;
        this.__wbg_ptr = 0;
        ${name}Finalization.unregister(this);
        $1
    }
`,
  );
}
if (js.includes('__destroy_into_raw')) throw new Error('trim-glue: __destroy_into_raw: a caller this script does not know');

// Each class's pointer to its Rust value, `this.__wbg_ptr`, read in every method (about 30 times in every bundle):
// a short name no method of theirs has.
if (/\b_p\b/.test(js)) throw new Error('trim-glue: __wbg_ptr: the glue already has a name _p');
if (!js.includes('this.__wbg_ptr')) throw new Error('trim-glue: __wbg_ptr: not in the glue');
js = js.split('this.__wbg_ptr').join('this._p');
if (js.includes('__wbg_ptr')) throw new Error('trim-glue: __wbg_ptr: read other than as this.__wbg_ptr');

// The one copy of u32s out of wasm memory (js-sys's `Uint32Array::from(&[u32])`, the meta table of each batch) copies
// from a view of its own: the cached Uint32Array view of the memory, its getter and its reset exist only for it.
js = cut(
  js,
  'Uint32Array from a slice',
  '            const ret = new Uint32Array(getArrayU32FromWasm0(arg0, arg1));\n',
  '            const ret = new Uint32Array(wasm.memory.buffer, arg0 >>> 0, arg1 >>> 0).slice();\n',
);
js = cut(
  js,
  'getArrayU32FromWasm0',
  `function getArrayU32FromWasm0(ptr, len) {
    ptr = ptr >>> 0;
    return getUint32ArrayMemory0().subarray(ptr / 4, ptr / 4 + len);
}
`,
  '',
);
js = cut(
  js,
  'getUint32ArrayMemory0',
  `let cachedUint32ArrayMemory0 = null;
function getUint32ArrayMemory0() {
    if (cachedUint32ArrayMemory0 === null || cachedUint32ArrayMemory0.byteLength === 0) {
        cachedUint32ArrayMemory0 = new Uint32Array(wasm.memory.buffer);
    }
    return cachedUint32ArrayMemory0;
}
`,
  '',
);
js = cut(js, 'cachedUint32ArrayMemory0 reset', '    cachedUint32ArrayMemory0 = null;\n', '');
if (/U32FromWasm0|Uint32ArrayMemory0/.test(js)) throw new Error('trim-glue: Uint32Array: another use of the cached view');

// The finalizers' fallback for a runtime without FinalizationRegistry (ES2021): every runtime feedpump supports has it
// (Node 14.6+, workerd, and the browsers with the Web Locks and BYOB readers feedpump uses). One per wasm class.
js = cut(
  js,
  'FinalizationRegistry fallback',
  "(typeof FinalizationRegistry === 'undefined')\n    ? { register: () => {}, unregister: () => {} }\n    : ",
  '',
  3,
);

// The instance and module, kept by the loader in variables nothing reads.
js = cut(js, 'unread wasmModule / wasmInstance', 'let wasmModule, wasmInstance, wasm;', 'let wasm;');
js = cut(js, 'unread wasmInstance', '    wasmInstance = instance;\n', '');
js = cut(js, 'unread wasmModule', '    wasmModule = module;\n', '');

writeFileSync(jsPath, js);
writeFileSync(dtsPath, dts);
