// Runs builds of bench/native (wasm32-wasip1) side by side in one V8, the engine Envoy runs the
// filter in, and compares their CPU time on one part. The builds take turns, in an order that
// flips every round, so that a slower stretch of a shared machine falls on all of them alike; the
// figure to read is the median of each round's ratio to the first build. Run by bench/v8_ab.py:
//
//   node --experimental-wasi-unstable-preview1 --no-liftoff bench/v8_ab.mjs PART ITERATIONS ROUNDS INPUTS_DIR INPUT... -- A.wasm B.wasm...
//
// INPUT...: bench/native's input files, in its order, all inside INPUTS_DIR (bench/lib.py's
// write_native_inputs).
import { openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { argv } from 'node:process';
import { WASI } from 'node:wasi';

const [part, iterations, rounds, inputs, ...rest] = argv.slice(2);
const files = rest.slice(0, rest.indexOf('--'));
const builds = rest.slice(rest.indexOf('--') + 1);
if (!rest.includes('--') || builds.length === 0) {
  throw new Error('usage: PART ITERATIONS ROUNDS INPUTS_DIR INPUT... -- A.wasm B.wasm...');
}
const modules = await Promise.all(builds.map(async (b) => WebAssembly.compile(await readFile(b))));
const times = builds.map(() => []);
// What bench/native prints (a checksum per run) is not wanted here.
const devNull = openSync('/dev/null', 'w');

async function runOnce(module) {
  const wasi = new WASI({
    version: 'preview1',
    args: ['bench-native', part, iterations, ...files],
    preopens: { [inputs]: inputs },
    stdout: devNull,
    returnOnExit: true,
  });
  const imports = { wasi_snapshot_preview1: wasi.wasiImport };
  for (const { module: name } of WebAssembly.Module.imports(module)) {
    // The proxy-wasm ABI the library declares: never called by bench/native.
    imports[name] ??= new Proxy({}, { get: (_, field) => () => { throw new Error(`${name}.${String(field)} called`); } });
  }
  const instance = await WebAssembly.instantiate(module, imports);
  const before = process.cpuUsage();
  wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

for (let round = 0; round < Number(rounds); round++) {
  const order = builds.map((_, i) => (round % 2 ? builds.length - 1 - i : i));
  for (const i of order) {
    times[i].push(await runOnce(modules[i]));
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
builds.forEach((build, i) => {
  const ratio = i === 0 ? '' : `, median ratio to the first ${median(times[i].map((t, r) => t / times[0][r])).toFixed(3)}`;
  console.log(`${build}: median ${median(times[i]).toFixed(1)} ms, min ${Math.min(...times[i]).toFixed(1)} ms${ratio}`);
});
