#!/usr/bin/env bash
# Benchmark: reading a big file back out of an image. Times `imgbuild add` of a random
# (incompressible) file and `imgbuild verify --file ... --expect-file` of the same file, in
# one invocation against one local registry, and prints wall time, peak RSS and the ratios.
# Markdown on stdout; progress on stderr.
#
# Knobs (environment):
#   BENCH_RUNS=3            runs of each command; the table shows each run and the median
#   BENCH_VERIFY_SIZE=1G    size of the random file (numfmt --from=iec syntax)
#   BENCH_IMGBUILD="node dist/imgbuild.mjs"   command that runs imgbuild (by default a copy of
#                           dist/imgbuild.mjs taken at start)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS=${BENCH_RUNS:-3}
SIZE=${BENCH_VERIFY_SIZE:-1G}

fail_usage() {
  echo "bench: $*" >&2
  exit 2
}
progress() { echo "bench: $*" >&2; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_RUNS must be a positive integer, got '$RUNS'"
BYTES=$(numfmt --from=iec "$SIZE" 2>/dev/null) || fail_usage "BENCH_VERIFY_SIZE '$SIZE' is not understood; use e.g. 1G or 200M"
((BYTES > 0)) || fail_usage "BENCH_VERIFY_SIZE must be more than zero bytes"
[[ -x /usr/bin/docker-registry ]] || fail_usage "/usr/bin/docker-registry is missing; run: bash bench/setup.sh"
[[ -x /usr/bin/time ]] || fail_usage "/usr/bin/time (GNU time, for the peak RSS) is missing; run: apt-get install -y time"
if [[ -z ${BENCH_IMGBUILD:-} && ! -f $REPO_ROOT/dist/imgbuild.mjs ]]; then
  fail_usage "$REPO_ROOT/dist/imgbuild.mjs is missing; run 'npm run build' in $REPO_ROOT"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-bench-verify.XXXXXX")
REGISTRY_PID=
cleanup() {
  if [[ -n $REGISTRY_PID ]]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${BENCH_IMGBUILD:-} ]]; then
  read -r -a IMGBUILD_CMD <<<"$BENCH_IMGBUILD"
  IMGBUILD_BUILD="command from BENCH_IMGBUILD"
else
  cp "$REPO_ROOT/dist/imgbuild.mjs" "$WORK/imgbuild.mjs"
  IMGBUILD_CMD=(node "$WORK/imgbuild.mjs")
  IMGBUILD_BUILD="dist/imgbuild.mjs sha256 $(sha256sum "$WORK/imgbuild.mjs" | cut -c1-12), built $(date -u -r "$REPO_ROOT/dist/imgbuild.mjs" +%Y-%m-%dT%H:%M:%SZ)"
fi

start_registry "$WORK/registry.log"
progress "registry on $REGISTRY; writing $SIZE of random bytes"
PAYLOAD=$WORK/payload.bin
head -c "$BYTES" /dev/urandom >"$PAYLOAD"

# Runs one command under GNU time; appends "seconds peak_rss_kb" to the named array.
declare -a ADD_RUNS VERIFY_RUNS
measure() {
  local into=$1 log=$2
  shift 2
  local stats status=0
  /usr/bin/time -o "$WORK/time" -f '%e %M' "$@" >/dev/null 2>"$log" || status=$?
  if ((status != 0)); then
    progress "failed (exit $status): $*"
    tail -n 20 "$log" >&2
    exit 1
  fi
  stats=$(tail -n 1 "$WORK/time")
  eval "$into+=(\"\$stats\")"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
for run in $(seq "$RUNS"); do
  # A fresh repository per run, so no run finds the blob an earlier one uploaded.
  ref=$REGISTRY/bench/verify-run$run:v1
  measure ADD_RUNS "$WORK/add-$run.log" "${IMGBUILD_CMD[@]}" add --from scratch --add "$PAYLOAD:/opt/app/payload.bin" --to "$ref" --insecure
  progress "add, run $run: ${ADD_RUNS[-1]} (s, KiB)"
  measure VERIFY_RUNS "$WORK/verify-$run.log" "${IMGBUILD_CMD[@]}" verify "$ref" --file /opt/app/payload.bin --expect-file "$PAYLOAD" --insecure
  progress "verify, run $run: ${VERIFY_RUNS[-1]} (s, KiB)"
done

column_of() { # index (1 = seconds, 2 = KiB), runs...
  local index=$1
  shift
  printf '%s\n' "$@" | awk -v i="$index" '{ print $i }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ADD_SECONDS=$(column_of 1 "${ADD_RUNS[@]}" | median)
VERIFY_SECONDS=$(column_of 1 "${VERIFY_RUNS[@]}" | median)
ADD_KIB=$(column_of 2 "${ADD_RUNS[@]}" | median)
VERIFY_KIB=$(column_of 2 "${VERIFY_RUNS[@]}" | median)
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
rate() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
runs_of() { column_of "$1" "${@:2}" | tr '\n' ' ' | sed 's/ $//'; }

echo "## imgbuild verify benchmark"
echo
echo "- started $STARTED_AT, took ${SECONDS}s; $(nproc) CPUs; load average (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- registry: $(/usr/bin/docker-registry --version 2>/dev/null | awk '{ print $NF }') on $REGISTRY (plain HTTP, filesystem storage)"
echo "- imgbuild: $IMGBUILD_BUILD; Node $(node --version)"
echo "- file: $SIZE ($BYTES bytes) of random bytes; $RUNS runs each, add and verify alternating; wall time and peak RSS from GNU time"
echo
echo "| command | runs (s) | median (s) | MB/s | peak RSS runs (MiB) | median peak RSS (MiB) |"
echo "|---|---|---|---|---|---|"
echo "| \`add --from scratch --add FILE:/opt/app/payload.bin\` | $(runs_of 1 "${ADD_RUNS[@]}") | $ADD_SECONDS | $(rate "$ADD_SECONDS") | $(for r in $(column_of 2 "${ADD_RUNS[@]}"); do printf '%s ' "$(mib "$r")"; done | sed 's/ $//') | $(mib "$ADD_KIB") |"
echo "| \`verify --file /opt/app/payload.bin --expect-file FILE\` | $(runs_of 1 "${VERIFY_RUNS[@]}") | $VERIFY_SECONDS | $(rate "$VERIFY_SECONDS") | $(for r in $(column_of 2 "${VERIFY_RUNS[@]}"); do printf '%s ' "$(mib "$r")"; done | sed 's/ $//') | $(mib "$VERIFY_KIB") |"
echo
echo "Ratios (verify / add, medians): time $(ratio "$VERIFY_SECONDS" "$ADD_SECONDS")x, peak RSS $(ratio "$VERIFY_KIB" "$ADD_KIB")x."
echo
if awk -v v="$VERIFY_SECONDS" -v a="$ADD_SECONDS" 'BEGIN { exit !(v <= a) }'; then verdict=PASS; else verdict=FAIL; fi
echo "- $verdict: verify reads the file at least as fast as add wrote it (verify ${VERIFY_SECONDS}s, add ${ADD_SECONDS}s)"
