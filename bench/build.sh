#!/usr/bin/env bash
# The report's Dockerfile (FROM base, USER root, WORKDIR /opt/app, COPY hello.txt ...) built
# by `imgbuild build` (first build with an empty base index cache, and again with it cached)
# and by `buildah bud` + `buildah push` (fresh storage each run, as a CI builder or a Kaniko
# pod starts), all against ONE local registry, in one invocation. Prints medians and ratios.
#
#   bash bench/build.sh                 # 200M and 1G bases, 3 runs (buildah on 1G: 2)
#   BENCH_SIZES="200M" BENCH_RUNS=5 bash bench/build.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"

SIZES=${BENCH_SIZES:-200M 1G}
RUNS=${BENCH_RUNS:-3}
SLOW_RUNS=${BENCH_SLOW_RUNS:-2}
SLOW_BASE_BYTES=$((1024 * 1024 * 1024))
TOOLS="imgbuild buildah"
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_RUNS must be a positive integer, got '$RUNS'"
declare -A BYTES_OF
for size in $SIZES; do
  BYTES_OF[$size]=$(numfmt --from=iec "$size" 2>/dev/null) || fail_usage "size '$size' is not understood (e.g. 200M)"
done
command -v buildah >/dev/null || fail_usage "buildah is missing; run: bash bench/setup.sh"
[[ -x $CRANE_BIN ]] || fail_usage "crane is missing at $CRANE_BIN (it pushes the bases); run: bash bench/setup.sh"
[[ -x $REPO_ROOT/dist/imgbuild ]] || fail_usage "dist/imgbuild is missing; run 'npm run build'"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_prepare_workdir
start_registry
progress "registry on $REGISTRY; logs in $LOGS"

CONTEXT=$WORK/context
mkdir -p "$CONTEXT"
printf 'built-by: kaniko\nmessage: hello from kaniko build\n' >"$CONTEXT/hello.txt"

# A realistic base (bench/realistic-base.py): an OS-like bottom layer and four package-like
# layers of many files (85% small), half random, half text; pushed with crane, gzip layers.
build_realistic_base() {
  local size=$1 label dir layer tars=()
  label=$(lower "$size")
  dir=$WORK/base-$label
  BASE_FILES[$size]=$(python3 "$BENCH_DIR/realistic-base.py" "$dir" "${BYTES_OF[$size]}" 5)
  for layer in 0 1 2 3 4; do
    tar --numeric-owner --owner=0 --group=0 -C "$dir/layer$layer" -cf "$dir/layer$layer.tar" .
    tars+=("$dir/layer$layer.tar")
  done
  push_base "$size" PATH=/usr/bin:/bin "${tars[@]}"
  rm -rf "$dir"
}
declare -A BASE_FILES

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# Runs "$@" with its output in a log; prints its wall time in seconds.
timed() {
  local log=$1 start end
  shift
  start=$(date +%s%N)
  "$@" >"$log" 2>&1 || { echo "bench: failed, see $log" >&2; tail -n 15 "$log" >&2; FAILURES=$((FAILURES + 1)); exit 1; }
  end=$(date +%s%N)
  seconds "$start" "$end"
}

declare -A TIMES
for size in $SIZES; do
  label=$(lower "$size")
  progress "pushing the $size base"
  build_realistic_base "$size"
  base=$REGISTRY/bench/base-$label:v1
  printf 'FROM %s\nUSER root\nWORKDIR /opt/app\nCOPY hello.txt /opt/app/hello.txt\n' "$base" >"$CONTEXT/Dockerfile"
  for run in $(seq "$RUNS"); do
    cache=$WORK/index-cache-$label-run$run
    t=$(timed "$LOGS/imgbuild-first-$label-$run.log" env XDG_CACHE_HOME="$cache" "${IMGBUILD_CMD[@]}" build "$CONTEXT" --insecure --to "$REGISTRY/bench/out-first-$label-$run:v1")
    TIMES[$size|first]+=" $t"
    progress "imgbuild build, $size base, empty index cache, run $run: ${t}s"
    t=$(timed "$LOGS/imgbuild-cached-$label-$run.log" env XDG_CACHE_HOME="$cache" "${IMGBUILD_CMD[@]}" build "$CONTEXT" --insecure --to "$REGISTRY/bench/out-cached-$label-$run:v1")
    TIMES[$size|cached]+=" $t"
    progress "imgbuild build, $size base, index cached, run $run: ${t}s"
    rm -rf "$cache"
    if ((BYTES_OF[$size] < SLOW_BASE_BYTES || run <= SLOW_RUNS)); then
      storage=(--root "$WORK/buildah-root" --runroot "$WORK/buildah-runroot" --storage-driver vfs)
      t=$(timed "$LOGS/buildah-$label-$run.log" bash -c '"$@"' _ sh -c "buildah ${storage[*]} bud --tls-verify=false -f $CONTEXT/Dockerfile -t $REGISTRY/bench/out-buildah-$label-$run:v1 $CONTEXT && buildah ${storage[*]} push --tls-verify=false $REGISTRY/bench/out-buildah-$label-$run:v1")
      buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
      rm -rf "$WORK/buildah-root" "$WORK/buildah-runroot" 2>/dev/null || true
      TIMES[$size|buildah]+=" $t"
      progress "buildah bud + push, $size base, run $run: ${t}s"
    fi
  done
done

echo "# imgbuild build vs buildah bud + push: the report's Dockerfile"
echo
echo "- $IMGBUILD_BUILD; $(buildah --version); $(nproc) cores; load before: $LOAD_BEFORE"
echo "- bases: 5 gzip layers (OS-like bottom layer + 4 package-like layers), $(for size in $SIZES; do printf '%s: %s files; ' "$size" "${BASE_FILES[$size]}"; done)half random, half text"
echo "- seconds are wall time of the whole command, median of the runs; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| base | imgbuild, empty index cache | imgbuild, index cached | buildah bud + push | buildah / first | buildah / cached |"
echo "| --- | --- | --- | --- | --- | --- |"
for size in $SIZES; do
  first=$(median "${TIMES[$size|first]}")
  cached=$(median "${TIMES[$size|cached]}")
  buildah=$(median "${TIMES[$size|buildah]}")
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
  echo "| $size | $first | $cached | $buildah | $(ratio "$buildah" "$first") | $(ratio "$buildah" "$cached") |"
done
