#!/usr/bin/env bash
# Benchmark: `imgbuild quickstart` end to end (start the embedded registry, make the base, run
# the report's add and Dockerfile build, verify, stop, clean up), timed by hyperfine, next to
# `imgbuild --version` (the start-up floor) in the same invocation. Goal: under 5 seconds.
# Needs hyperfine and a built dist/ (npm run build). Prints markdown on stdout.
#
# Knobs (environment):
#   BENCH_RUNS=10            runs per command
#   BENCH_NODE=node          the node that runs imgbuild
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS=${BENCH_RUNS:-10}
NODE=${BENCH_NODE:-node}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_RUNS must be a positive integer, got '$RUNS'"
command -v hyperfine >/dev/null || fail_usage "hyperfine is missing; run: bash bench/setup.sh (or apt-get install hyperfine)"
[[ -x $REPO_ROOT/dist/imgbuild ]] || fail_usage "$REPO_ROOT/dist/imgbuild is missing; run 'npm run build'"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-bench-quickstart.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# A private copy: a rebuild during the run cannot mix two builds. Run as `npx imgbuild` runs it
# (the imgbuild command, with NODE first on PATH), its code caches in the work directory.
cp -r "$REPO_ROOT/dist" "$WORK/dist"
CLI="env PATH=$(dirname "$(command -v "$NODE")"):$PATH XDG_CACHE_HOME=$WORK/cache $WORK/dist/imgbuild"
# Its own TMPDIR: a run that left anything behind fails the benchmark below.
mkdir -p "$WORK/tmp"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
TMPDIR=$WORK/tmp hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/times.json" \
  --command-name 'imgbuild --version' "$CLI --version" \
  --command-name 'imgbuild quickstart' "$CLI quickstart -q" >&2
leftovers=$(find "$WORK/tmp" -mindepth 1 -maxdepth 1 | wc -l)

echo "## imgbuild quickstart benchmark"
echo
echo "- started $STARTED_AT; $(nproc) CPUs; load average (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- node $("$NODE" --version); dist sha256 $(find "$WORK/dist" -name '*.[mc]js' -type f | sort | xargs cat | sha256sum | cut -c1-12); $RUNS runs each (hyperfine, 1 warm-up)"
echo
node -e '
  const { results } = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const median = (r) => r.median.toFixed(3);
  console.log("| command | median (s) | mean ± σ (s) | min–max (s) | user + sys (s) |");
  console.log("|---|---|---|---|---|");
  for (const r of results) console.log(`| ${r.command} | ${median(r)} | ${r.mean.toFixed(3)} ± ${r.stddev.toFixed(3)} | ${r.min.toFixed(3)}–${r.max.toFixed(3)} | ${(r.user + r.system).toFixed(3)} |`);
  const quick = results.find((r) => r.command === "imgbuild quickstart");
  const floor = results.find((r) => r.command === "imgbuild --version");
  console.log("");
  console.log(`quickstart / --version (medians): ${(quick.median / floor.median).toFixed(1)}x`);
  console.log("");
  console.log("### Goal");
  console.log("");
  console.log(`- ${quick.median < 5 ? "PASS" : "FAIL"}: imgbuild quickstart under 5 s (median ${median(quick)} s, slowest ${quick.max.toFixed(3)} s)`);
' "$WORK/times.json"
if ((leftovers > 0)); then
  echo "- FAIL: the quickstart left $leftovers entries in its TMPDIR"
  exit 1
fi
