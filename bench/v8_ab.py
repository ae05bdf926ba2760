#!/usr/bin/env python3
"""Compare builds of the filter's core in V8, the engine Envoy runs it in. Not part of `make bench`.

    python3 bench/v8_ab.py build OUT.wasm            # bench/native for wasm32, from the tree as it is
    python3 bench/v8_ab.py run PART A.wasm B.wasm... [--iterations N] [--rounds R]

Build one copy, change the code, build another, then run them: they take turns in one Node
process (bench/v8_ab.mjs), and the median of each round's ratio to the first build is the figure to
read (two copies of the same build agree within about 2 % on a quiet machine). PART is one of
bench/native's parts (usage-sse, body-2k, call, ...); the inputs are the ones `make bench` and
bench/breakdown.py use. Needs node (Debian `nodejs`, which `make test` installs).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

TARGET_DIR = os.path.join(lib.ROOT, "target", "bench-native-wasm")
BUILT = os.path.join(TARGET_DIR, "wasm32-wasip1", "release", "bench-native.wasm")
# A 64 KB block per iteration is a few milliseconds; the other parts are microseconds.
DEFAULT_ITERATIONS = {"usage-sse": 1000, "body-2k": 40000, "body-tiny": 200000, "usage-json": 100000}


def build(out):
    subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip1", "--manifest-path",
                    os.path.join(lib.ROOT, "bench", "native", "Cargo.toml"), "--target-dir", TARGET_DIR],
                   cwd=lib.ROOT, check=True)
    shutil.copyfile(BUILT, out)
    print(out)


def run(part, builds, iterations, rounds):
    if shutil.which("node") is None:
        sys.exit("node is missing: `make test` installs it (Debian nodejs)")
    missing = [b for b in builds if not os.path.isfile(b)]
    if missing:
        sys.exit("no such build: " + ", ".join(missing))
    with tempfile.TemporaryDirectory(prefix="v8-ab-") as workdir:
        inputs = lib.write_native_inputs(workdir)
        subprocess.run(["node", "--experimental-wasi-unstable-preview1", "--no-liftoff", "--no-warnings",
                        os.path.join(lib.ROOT, "bench", "v8_ab.mjs"), part, str(iterations), str(rounds), workdir]
                       + inputs + ["--"] + [os.path.abspath(b) for b in builds], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build bench/native for wasm32 and copy it to OUT")
    b.add_argument("out")
    r = sub.add_parser("run", help="run builds side by side on one part")
    r.add_argument("part")
    r.add_argument("builds", nargs="+")
    r.add_argument("--iterations", type=int)
    r.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    if args.command == "build":
        build(args.out)
    else:
        iterations = args.iterations or DEFAULT_ITERATIONS.get(args.part, 20000)
        run(args.part, args.builds, iterations, args.rounds)


if __name__ == "__main__":
    main()
