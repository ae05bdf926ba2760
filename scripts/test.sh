#!/usr/bin/env bash
# Runs `cargo test --no-fail-fast` (every test binary, even after one fails), shows its output as it
# goes, and ends with one summary: each test binary with its counts and failed tests, then a total.
# Exits non-zero if anything failed, a binary ended without a result (a crash), or the build failed.
#
#   scripts/test.sh                   # cargo test --workspace --no-fail-fast
#   scripts/test.sh -p integration    # other cargo test arguments instead of --workspace
set -uo pipefail
cd "$(dirname "$0")/.."

args=("$@")
[[ ${#args[@]} -eq 0 ]] && args=(--workspace)

work="$(mktemp -d "${TMPDIR:-/tmp}/ai-attribution-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Build first, recording which package and target each test executable belongs to (cargo's
# "Running tests/x.rs" line does not say which crate's tests/ it is).
if ! cargo test --no-fail-fast "${args[@]}" --no-run --message-format=json-render-diagnostics >"$work/artifacts.json"; then
    echo
    echo "test summary: the tests did not build (see the errors above)"
    echo "total: 0 passed, 1 failed"
    exit 1
fi

cargo test --no-fail-fast "${args[@]}" 2>&1 | tee "$work/test.log"
cargo_status=${PIPESTATUS[0]}

python3 - "$work/artifacts.json" "$work/test.log" "$cargo_status" <<'EOF'
import json, os, re, sys

artifacts, log, cargo_status = sys.argv[1], sys.argv[2], int(sys.argv[3])

# executable file name -> "package kind:name"
names = {}
for line in open(artifacts, encoding="utf-8", errors="replace"):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    exe = msg.get("executable") if msg.get("reason") == "compiler-artifact" else None
    if exe:
        # "path+file:///dir/filter#ai-attribution@0.1.0", or "...#0.1.0" when the name is the dir's
        url, _, fragment = msg["package_id"].partition("#")
        package = fragment.split("@")[0] if "@" in fragment else url.rstrip("/").split("/")[-1]
        target = msg["target"]
        kind = "unit tests" if target["kind"] != ["test"] else "tests/" + target["name"] + ".rs"
        if target["kind"] == ["bin"]:
            kind = "bin " + target["name"]
        names[os.path.basename(exe)] = f"{package} {kind}"

running = re.compile(r"^\s+Running (?:unittests )?(\S+) \((.+)\)$")
doctests = re.compile(r"^\s+Doc-tests (\S+)$")
result = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
failed_test = re.compile(r"^test (\S+) \.\.\. FAILED$")

binaries = []  # [name, passed, failed, ignored, failed tests, has result]
for line in open(log, encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    if m := running.match(line):
        exe = os.path.basename(m.group(2))
        binaries.append([names.get(exe, m.group(1)), 0, 0, 0, [], False])
    elif m := doctests.match(line):
        binaries.append([f"{m.group(1)} doc-tests", 0, 0, 0, [], False])
    elif binaries and (m := failed_test.match(line)):
        binaries[-1][4].append(m.group(1))
    elif binaries and (m := result.match(line)):
        b = binaries[-1]
        b[1], b[2], b[3], b[5] = int(m.group(1)), int(m.group(2)), int(m.group(3)), True

print()
print("=" * 36, "test summary", "=" * 36)
total = [0, 0, 0]
bad = crashed = 0
for name, p, f, i, fails, done in binaries:
    total[0] += p
    total[1] += f
    total[2] += i
    if not done:
        crashed += 1
        print(f"CRASHED  {name:<46} no result line: the test binary crashed or was killed")
        continue
    counts = f"{p} passed" + (f", {f} failed" if f else "") + (f", {i} ignored" if i else "")
    print(f"{'FAILED' if f else 'ok':<8} {name:<46} {counts}")
    if f:
        bad += 1
        for t in fails:
            print(f"{'':<9}failed: {t}")
print("-" * 86)
print(f"{len(binaries)} test binaries: {len(binaries) - bad - crashed} ok, {bad} failed, {crashed} crashed")
if cargo_status != 0 and not bad and not crashed:
    print(f"cargo test exited with {cargo_status} outside the tests: see its output above")
# A crashed binary counts as one failure in the total.
print(f"total: {total[0]} passed, {total[1] + crashed} failed, {total[2]} skipped")
sys.exit(1 if cargo_status or bad or crashed else 0)
EOF
