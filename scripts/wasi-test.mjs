// Runs a wasm32-wasip1 test binary in Node's V8, the engine Envoy runs the filter in, so that the
// unit tests also cover the code only the wasm build has (the vector byte scans of
// filter/src/find.rs). Cargo calls it as the target's runner (`make unit-wasm`):
//
//   node --experimental-wasi-unstable-preview1 --no-liftoff --no-turbo-fast-api-calls scripts/wasi-test.mjs TEST.wasm [libtest args...]
//
// --no-liftoff: V8 compiles every function with its optimising compiler first, as Envoy's V8 does.
// --no-turbo-fast-api-calls: optimised code calls Node's WASI functions the ordinary way. With V8's
// fast calls, Node 20 ended with a segmentation fault (in JavaScript, after every test had passed)
// when run from make, and not when the same command ran outside it, as in nodejs/node#53087.
//
// The repository is the only directory the test sees (the usage fixtures live in it). Host
// imports other than WASI (the proxy-wasm ABI the glue declares) trap if a test ever calls one.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { argv, env } from 'node:process';
import { WASI } from 'node:wasi';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const [binary, ...args] = argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [binary, ...args], env, preopens: { [root]: root }, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(binary));
const imports = { wasi_snapshot_preview1: wasi.wasiImport };
for (const { module: name } of WebAssembly.Module.imports(module)) {
  if (!(name in imports)) {
    imports[name] = new Proxy({}, {
      get: (_, field) => () => { throw new Error(`${name}.${String(field)} called in a unit test`); },
    });
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// The library is a proxy-wasm reactor and exports _initialize; its test harness is a command.
const { memory, _start } = instance.exports;
// The exit code is set rather than process.exit() called: Node ends once nothing is left to run.
process.exitCode = wasi.start({ exports: { memory, _start } });
