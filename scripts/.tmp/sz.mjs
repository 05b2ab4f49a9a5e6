import { buildSync } from 'esbuild';
import { brotliCompressSync, constants } from 'node:zlib';
const out = buildSync({ entryPoints: ['dist/entrypoints/web.js'], bundle: true, minify: true, format: 'esm', platform: 'neutral', target: 'es2022', external: ['*.wasm', 'node:*'], write: false, logLevel: 'silent' }).outputFiles[0].contents;
const b = brotliCompressSync(out, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: out.length } }).length;
console.log(out.length, b);
