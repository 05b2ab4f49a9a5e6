// Mutation testing of the TypeScript wrapper's consume side with StrykerJS (run outside CI, like the fuzzers: it is
// slow). `npm run mutants:js` mutates every module listed in `mutate`; one module alone:
//   npx stryker run --mutate js/src/filters.ts
// Stryker instruments all mutants into one copy of js/src (in .stryker-tmp/), `buildCommand` compiles it once to that
// copy's dist/, and the command runner runs the Node unit tests once per mutant with the mutant switched on (the
// environment variable __STRYKER_ACTIVE_MUTANT__). MUTANT_TESTS chooses the test files (default: every Node unit
// test). The v2 modules and the transport, one at a time with the tests that reach them (a few seconds per mutant;
// the v2 schedule is the core's now, core/src/schedule.rs: cargo mutants, docs/mutation.md):
//   MUTANT_TESTS='tests/js/unit/transport.test.mjs tests/js/unit/v2-discovery.test.mjs' \
//     npx stryker run --mutate js/src/transport.ts,js/src/source/discovery.ts
//   source/v2.ts in two parts (discovery parsing moved to source/discovery.ts; V2Source, whose 409/retry/live/close
//   paths only the interop tests reach, tests/interop/v2-source.test.mjs above all): the commands, scores and
//   equivalent mutants are in docs/mutation.md.
// Reports: reports/mutation/js.html and js.json (gitignored).
export default {
  testRunner: 'command',
  // Both in scripts/mutants-js.sh: the build emits without type checking (mutated code does not type-check).
  commandRunner: { command: 'bash scripts/mutants-js.sh test' },
  buildCommand: 'bash scripts/mutants-js.sh build',
  mutate: ['js/src/consume.ts', 'js/src/decode.ts', 'js/src/stores/*.ts', 'js/src/tabs.ts', 'js/src/filters.ts', 'js/src/source/*.ts'],
  // The sandbox needs package.json, js/ (with the generated js/src/wasm/), tests/ and www/; not the Rust build.
  ignorePatterns: ['/target', '/fuzz', '/bench', '/docs', '/examples', '/.venv', '/core', '/src', '/reports', '/test-results', '*.tgz'],
  coverageAnalysis: 'off', // the command runner cannot tell which test covers which mutant
  concurrency: 2,
  timeoutMS: 5_000,
  thresholds: { high: 90, low: 85, break: null },
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/js.html' },
  jsonReporter: { fileName: 'reports/mutation/js.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
