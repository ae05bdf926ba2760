#!/usr/bin/env bash
# `ai-attribution report` on 1 million access-log lines: lines per second and peak RSS.
# Generates the lines once (bench/results/cli-1m.log, about 1.3 GB), builds the CLI with the
# `cli` profile (release, opt-level 3), and times one run per format with /usr/bin/time -v,
# pinned to one core. Knobs: CLI_BENCH_LINES (default 1000000), CLI_BENCH_CPU (default 0).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${CLI_BENCH_LINES:-1000000}
CPU=${CLI_BENCH_CPU:-0}
OUT=bench/results
LOG=$OUT/cli-$LINES.log
mkdir -p "$OUT"
scripts/setup.sh time util-linux   # /usr/bin/time -v, taskset
cargo build --profile cli -p ai-attribution-cli --quiet
BIN=target/cli/ai-attribution
if [ ! -s "$LOG" ] || [ "$(wc -l < "$LOG")" -ne "$LINES" ]; then
  echo "writing $LINES lines to $LOG"
  python3 bench/cli_report_lines.py "$LINES" > "$LOG"
fi
bytes=$(stat -c %s "$LOG")
run() {
  local name=$1; shift
  local t; t=$(mktemp)
  taskset -c "$CPU" /usr/bin/time -v "$BIN" "$@" "$LOG" > /dev/null 2> "$t" || { cat "$t"; rm -f "$t"; exit 1; }
  local secs cpu rss
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$t")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$t")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$t")
  rm -f "$t"
  # lines/s per CPU second as well as per elapsed second: on a shared machine the two differ.
  awk -v n="$name" -v l="$LINES" -v s="$secs" -v c="$cpu" -v r="$rss" -v b="$bytes" \
    'BEGIN {printf "%-38s %7.2f s elapsed %6.2f s CPU  %9.0f lines/CPU-s  %6.1f MB/CPU-s  peak RSS %7.1f MB\n", n, s, c, l/c, b/c/1e6, r/1024}'
}
echo "ai-attribution on $LINES lines ($((bytes / 1000000)) MB), pinned to CPU $CPU; load average: $(cut -d" " -f1-3 /proc/loadavg)"
run "table --by business_unit" report --by business_unit
run "table --by business_unit,user,model" report --by business_unit,user,model --period hour
run "json --by user,session" report --by user,session --format json
run "focus --by app" report --by app --format focus
run "spikes --by business_unit" spikes --by business_unit
