#!/usr/bin/env bash
# Benchmark: start-up bound work. `imgbuild add` of a 1 KiB file to a 10 MiB base against
# `crane append` of the same file, on one local registry started here, with imgbuild run by
# each Node given (Node 20 from PATH, and 22 / 24 when their tarballs are cached, see below).
# Also times `node -e 0` and `imgbuild --version`, the floor under every command.
# Prints a markdown table of medians, ratios to crane, and the goal check on stdout.
#
# Knobs (environment):
#   BENCH_RUNS=10           runs per cell (tools take turns inside each round)
#   BENCH_NODES="node ..."  node binaries to run imgbuild with; default: `node` from PATH plus
#                           $IMGBUILD_CACHE/node-tarballs/node-*/package/bin/node when present
#                           (made by `bash bench/setup.sh --nodes`)
#   BENCH_IMGBUILD_DIR=dist the built dist/ to run (copied first, so a rebuild cannot mix builds)
#   BENCH_BASELINE_DIR=     another built dist/ (e.g. of an older commit) timed in the same rounds,
#                           so a change is measured against what it replaces under the same load
#   BENCH_KEEP_LOGS=1       keep per-run logs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS=${BENCH_RUNS:-10}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_RUNS must be a positive integer, got '$RUNS'"
SOURCE_DIST=${BENCH_IMGBUILD_DIR:-$REPO_ROOT/dist}
[[ -x $SOURCE_DIST/imgbuild ]] || fail_usage "$SOURCE_DIST/imgbuild is missing; run 'npm run build'"
[[ -x /usr/bin/docker-registry ]] || fail_usage "/usr/bin/docker-registry is missing; run: bash bench/setup.sh"
[[ -x $CRANE_BIN ]] || fail_usage "crane $CRANE_VERSION is missing at $CRANE_BIN; run: bash bench/setup.sh"
[[ -x /usr/bin/time ]] || fail_usage "/usr/bin/time is missing (Debian package time)"
[[ -x /bin/busybox ]] || fail_usage "/bin/busybox is missing (the base contains it); run: bash bench/setup.sh"

if [[ -n ${BENCH_NODES:-} ]]; then
  read -r -a NODES <<<"$BENCH_NODES"
else
  NODES=(node)
  for cached in "$BENCH_CACHE"/node-tarballs/node-*/package/bin/node; do
    [[ -x $cached ]] && NODES+=("$cached")
  done
fi

TOOLS="crane"
has_tool() { [[ $1 == crane ]]; }
bench_prepare_workdir
# The whole dist/: the imgbuild command is dist/imgbuild, cli.cjs and imgbuild.cjs.
cp -r "$SOURCE_DIST" "$WORK/dist"
BUILDS=(dist)
if [[ -n ${BENCH_BASELINE_DIR:-} ]]; then
  [[ -x $BENCH_BASELINE_DIR/imgbuild || -f $BENCH_BASELINE_DIR/cli.mjs ]] || fail_usage "$BENCH_BASELINE_DIR has neither imgbuild nor cli.mjs"
  cp -r "$BENCH_BASELINE_DIR" "$WORK/baseline"
  BUILDS+=(baseline)
fi
BUILD_ID="dist/*.?js sha256 $(find "$WORK/dist" -name '*.[mc]js' -type f | sort | xargs cat | sha256sum | cut -c1-12), built $(date -u -r "$SOURCE_DIST/imgbuild" +%Y-%m-%dT%H:%M:%SZ)"

declare -A BYTES_OF=([10M]=$((10 * 1024 * 1024)))
start_registry
progress "registry on $REGISTRY; logs in $LOGS"
build_base 10M
BASE=$REGISTRY/bench/base-10m:v1
mkdir -p "$WORK/stage/opt/app"
head -c 1024 /dev/urandom >"$WORK/stage/opt/app/file1k"

node_label() { "$1" --version; }

# The command line of imgbuild from build $2 run by node $1: the `imgbuild` command npm links
# (dist/imgbuild, with that node first on PATH) when the build has one, else node on cli.mjs
# (builds before the shell launcher). Its code caches go to $3 (default: one directory per
# build for the whole run, filled by the untimed first run, as a user's second run finds it;
# one per build because the launcher removes the caches of other builds it finds).
imgbuild_command() {
  local node=$1 build=$2 cache=${3:-$WORK/xdg-cache-$2}
  if [[ -x $WORK/$build/imgbuild ]]; then
    IMGBUILD=(env "PATH=$(dirname "$(command -v "$node")"):$PATH" "XDG_CACHE_HOME=$cache" "$WORK/$build/imgbuild")
  else
    IMGBUILD=("$node" "$WORK/$build/cli.mjs")
  fi
}
declare -A LABEL TIMES CPU
CELLS=("node -e 0@crane-none" "crane append@crane")
for n in "${!NODES[@]}"; do
  LABEL[$n]=$(node_label "${NODES[$n]}")
done

# One timed command; appends seconds to TIMES[$1]. Fails the benchmark on a failed command.
timed() {
  local key=$1 log=$LOGS/run.log start end
  shift
  start=$(date +%s%N)
  if ! /usr/bin/time -f '%U %S' -o "$WORK/cpu" "$@" >>"$log" 2>&1; then
    echo "bench: '$*' failed; last lines of $log:" >&2
    tail -n 15 "$log" >&2
    FAILURES=$((FAILURES + 1))
    exit 1
  fi
  end=$(date +%s%N)
  TIMES[$key]+=" $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
  CPU[$key]+=" $(tail -n1 "$WORK/cpu" | awk '{ printf "%.3f", $1 + $2 }')"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0
# One untimed run per Node first: Node 22+ fills its compile cache, as any second use would.
for n in "${!NODES[@]}"; do
  for build in "${BUILDS[@]}"; do
    imgbuild_command "${NODES[$n]}" "$build"
    "${IMGBUILD[@]}" add --from "$BASE" --add "$WORK/stage/opt/app/file1k:/opt/app/file1k" \
      --to "$REGISTRY/bench/warm-$build-$n:1k" --insecure >>"$LOGS/run.log" 2>&1
  done
done
for run in $(seq "$RUNS"); do
  timed "crane" bash -c "tar -C '$WORK/stage' -cf '$WORK/layer.tar' opt && '$CRANE_BIN' --insecure append -b '$BASE' -f '$WORK/layer.tar' -t '$REGISTRY/bench/crane-run$run:1k'"
  for n in "${!NODES[@]}"; do
    node=${NODES[$n]}
    timed "node-e0|$n" "$node" -e 0
    for build in "${BUILDS[@]}"; do
      imgbuild_command "$node" "$build"
      timed "version|$n|$build" "${IMGBUILD[@]}" --version
      timed "add|$n|$build" "${IMGBUILD[@]}" add --from "$BASE" --add "$WORK/stage/opt/app/file1k:/opt/app/file1k" \
        --to "$REGISTRY/bench/imgbuild-$build-$n-run$run:1k" --insecure
    done
    # A first run: no code cache yet (it writes one).
    imgbuild_command "$node" dist "$WORK/cold-cache-$n-$run"
    timed "add-cold|$n" "${IMGBUILD[@]}" add --from "$BASE" --add "$WORK/stage/opt/app/file1k:/opt/app/file1k" \
      --to "$REGISTRY/bench/imgbuild-cold-$n-run$run:1k" --insecure
  done
  # Node 20 reads NODE_EXTRA_CA_CERTS's bundle at every start (Node 22+ only when TLS is first
  # used): where the environment sets it, also time the first Node without it, to show its share.
  if [[ -n ${NODE_EXTRA_CA_CERTS:-} ]]; then
    timed "node-e0-noextra" env -u NODE_EXTRA_CA_CERTS "${NODES[0]}" -e 0
  fi
  progress "round $run of $RUNS done"
done

# Untimed check that the last imgbuild image has the file (a skipped push must not win).
"$CRANE_BIN" --insecure export "$REGISTRY/bench/imgbuild-dist-0-run$RUNS:1k" "$WORK/exported.tar" >>"$LOGS/run.log" 2>&1
tar -tf "$WORK/exported.tar" >"$WORK/exported.list"
grep -Eq '^(\./|/)?opt/app/file1k$' "$WORK/exported.list" || {
  echo "bench: the image imgbuild pushed lacks opt/app/file1k; it has:" >&2
  cat "$WORK/exported.list" >&2
  exit 1
}

CRANE=$(median "${TIMES[crane]}")
CRANE_CPU=$(median "${CPU[crane]}")
echo "## imgbuild start-up benchmark"
echo
echo "- started $STARTED_AT, took ${SECONDS}s; $(nproc) CPUs; load average (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- registry: $(/usr/bin/docker-registry --version 2>/dev/null | awk '{ print $NF }') on $REGISTRY (plain HTTP); base: 10 MiB (busybox + random) pushed by crane"
echo "- imgbuild: $BUILD_ID${BENCH_BASELINE_DIR:+; baseline: $BENCH_BASELINE_DIR}; crane $CRANE_VERSION; $RUNS runs per cell, tools taking turns; median wall seconds"
echo
echo "| command | node | build | runs (s) | median (s) | vs crane append | CPU user+sys median (s) | CPU vs crane |"
echo "|---|---|---|---|---|---|---|---|"
echo "| crane append (tar + append) | — | — | $(sed 's/^ //' <<<"${TIMES[crane]}") | $CRANE | 1.00x | $CRANE_CPU | 1.00x |"
GOAL_VERDICT=SKIP
GOAL_TEXT=""
for n in "${!NODES[@]}"; do
  for cell in node-e0 version add add-cold; do
    builds=("${BUILDS[@]}")
    [[ $cell == node-e0 ]] && builds=(—)
    [[ $cell == add-cold ]] && builds=(dist)
    for build in "${builds[@]}"; do
      key="$cell|$n"
      [[ $cell == node-e0 || $cell == add-cold ]] || key+="|$build"
      med=$(median "${TIMES[$key]}")
      ratio=$(awk -v t="$med" -v c="$CRANE" 'BEGIN { printf "%.2fx", t / c }')
      case $cell in
      node-e0) what='`node -e 0`' ;;
      version) what='`imgbuild --version`' ;;
      add) what='`imgbuild add` 1 KiB file' ;;
      add-cold) what='`imgbuild add` 1 KiB file, first run (no code cache)' ;;
      esac
      cpu=$(median "${CPU[$key]}")
      cpu_ratio=$(awk -v t="$cpu" -v c="$CRANE_CPU" 'BEGIN { if (c > 0) printf "%.1fx", t / c; else print "—" }')
      echo "| $what | ${LABEL[$n]} | $build | $(sed 's/^ //' <<<"${TIMES[$key]}") | $med | $ratio | $cpu | $cpu_ratio |"
      if [[ $cell == add && $build == dist && ${LABEL[$n]} == v20.* && $GOAL_VERDICT == SKIP ]]; then
        GOAL_VERDICT=$(awk -v i="$med" -v c="$CRANE" 'BEGIN { print (i <= 2 * c) ? "PASS" : "FAIL" }')
        GOAL_TEXT="imgbuild ${med}s, crane ${CRANE}s, $ratio"
      fi
    done
  done
done
if [[ -n ${TIMES[node-e0-noextra]:-} ]]; then
  key=node-e0-noextra
  med=$(median "${TIMES[$key]}")
  ratio=$(awk -v t="$med" -v c="$CRANE" 'BEGIN { printf "%.2fx", t / c }')
  cpu=$(median "${CPU[$key]}")
  cpu_ratio=$(awk -v t="$cpu" -v c="$CRANE_CPU" 'BEGIN { if (c > 0) printf "%.1fx", t / c; else print "—" }')
  echo "| \`node -e 0\`, NODE_EXTRA_CA_CERTS unset | ${LABEL[0]} | — | $(sed 's/^ //' <<<"${TIMES[$key]}") | $med | $ratio | $cpu | $cpu_ratio |"
  NOEXTRA_NOTE="This environment sets NODE_EXTRA_CA_CERTS, which Node 20 reads at every start: the imgbuild command keeps it from Node's start (src/cli/imgbuild.sh); the 'unset' row shows what Node 20 costs without it."
fi
echo
echo "### Goal"
echo
echo "- $GOAL_VERDICT: 1 KiB add on Node 20, imgbuild wall time <= 2x crane append's${GOAL_TEXT:+ ($GOAL_TEXT)}"
echo
[[ -n ${NOEXTRA_NOTE:-} ]] && echo "$NOEXTRA_NOTE"
echo "Wall time on a loaded machine grows with the CPU a command needs; the CPU columns (from /usr/bin/time, children included) show that share without the wait for a core."
