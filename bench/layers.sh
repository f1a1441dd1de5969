#!/usr/bin/env bash
# Benchmark: the layer builder on two shapes of content that bench/run.sh does not cover,
# with imgbuild, tar + crane append and buildah (bud + push), against ONE local registry
# started here, on one small base:
#   many-files    a directory of small text files (default 20,000 in 200 directories, ~1.5 MB)
#                 added as `--add DIR/:/opt/app/data/`
#   compressible  one file of base64 text (default 200 MB), added as /opt/app/file.b64
# Prints a markdown table of medians (wall time, CPU time, peak RSS) and the goal checks on stdout;
# progress goes to stderr.
#
# Knobs (environment):
#   BENCH_RUNS=5                       runs per cell; the table shows the median
#   BENCH_CELLS="many-files compressible"
#   BENCH_TOOLS="imgbuild crane buildah"
#   BENCH_MANY_FILES="20000"           file counts of the many-files cells (e.g. "20000 200000")
#   BENCH_COMPRESSIBLE=200M            size of the base64 file
#   BENCH_KEEP_LOGS=1                  keep the per-run logs even when everything succeeded
#   BENCH_IMGBUILD="node dist/imgbuild.mjs"   as in bench/run.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS=${BENCH_RUNS:-5}
CELLS=${BENCH_CELLS:-many-files compressible}
TOOLS=${BENCH_TOOLS:-imgbuild crane buildah}
MANY_COUNTS=${BENCH_MANY_FILES:-20000}
COMPRESSIBLE=${BENCH_COMPRESSIBLE:-200M}
BASE_SIZE=10M
# Files per directory in the many-files tree: 20,000 files give 200 directories.
FILES_PER_DIRECTORY=100

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_RUNS must be a positive integer, got '$RUNS'"
for cell in $CELLS; do
  [[ $cell == many-files || $cell == compressible ]] ||
    fail_usage "unknown cell '$cell' in BENCH_CELLS; choose from: many-files compressible"
done
for count in $MANY_COUNTS; do
  [[ $count =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_MANY_FILES must list positive integers, got '$count'"
done
declare -A BYTES_OF
for size in $BASE_SIZE $COMPRESSIBLE; do
  BYTES_OF[$size]=$(numfmt --from=iec "$size" 2>/dev/null) ||
    fail_usage "size '$size' is not understood; use a number with an optional K, M or G suffix (e.g. 200M)"
done
for tool in $TOOLS; do
  case $tool in
  imgbuild | crane | buildah) ;;
  *) fail_usage "unknown tool '$tool' in BENCH_TOOLS; choose from: imgbuild crane buildah" ;;
  esac
done
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }
[[ -x /usr/bin/docker-registry ]] || fail_usage "/usr/bin/docker-registry is missing; run: bash bench/setup.sh"
[[ -x $CRANE_BIN ]] || fail_usage "crane $CRANE_VERSION is missing at $CRANE_BIN; run: bash bench/setup.sh"
[[ -x /bin/busybox ]] || fail_usage "/bin/busybox is missing (the base contains it); run: bash bench/setup.sh"
[[ -x /usr/bin/time ]] || fail_usage "/usr/bin/time (GNU time, for peak RSS) is missing; apt-get install time"
if has_tool buildah; then
  command -v buildah >/dev/null || fail_usage "buildah is missing; run: bash bench/setup.sh"
fi
if has_tool imgbuild && [[ -z ${BENCH_IMGBUILD:-} && ! -x $REPO_ROOT/dist/imgbuild ]]; then
  fail_usage "$REPO_ROOT/dist/imgbuild is missing; run 'npm run build' in $REPO_ROOT (or drop imgbuild from BENCH_TOOLS)"
fi

bench_prepare_workdir

# ---- inputs --------------------------------------------------------------------------------
# Each input exists three times over hard links: imgbuild's source, crane's staging tree
# (opt/app/...) and buildah's build context, so every tool reads the same inodes.
INPUT_LABELS=()
declare -A INPUT_FILES   # label -> regular files the new layer must hold
declare -A INPUT_BYTES   # label -> bytes of content (for MB/s)

prepare_many_files() {
  local count=$1 label=many-$1 directory
  directory=$WORK/input-$label/data
  mkdir -p "$directory"
  # Small text files of 0-150 bytes (75 on average), like a tree of configs or sources.
  node -e '
    const fs = require("node:fs"), path = require("node:path"), crypto = require("node:crypto");
    const [root, count, perDirectory] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
    const text = crypto.randomBytes(1 << 16).toString("base64");
    for (let i = 0; i < count; i++) {
      const directory = path.join(root, "d" + String(Math.floor(i / perDirectory)).padStart(4, "0"));
      if (i % perDirectory === 0) fs.mkdirSync(directory);
      const length = crypto.randomInt(151), offset = crypto.randomInt(text.length - 151);
      fs.writeFileSync(path.join(directory, "f" + String(i).padStart(6, "0") + ".txt"), text.slice(offset, offset + length));
    }' "$directory" "$count" "$FILES_PER_DIRECTORY"
  mkdir -p "$WORK/crane-stage-$label/opt/app" "$WORK/buildah-context-$label"
  cp -al "$directory" "$WORK/crane-stage-$label/opt/app/data"
  cp -al "$directory" "$WORK/buildah-context-$label/data"
  INPUT_LABELS+=("$label")
  INPUT_FILES[$label]=$count
  INPUT_BYTES[$label]=$(du -sb --apparent-size "$directory" | cut -f1)
}

prepare_compressible() {
  local size=$1 label name
  label=base64-$(lower "$size")
  name=file.b64
  mkdir -p "$WORK/input-$label" "$WORK/crane-stage-$label/opt/app" "$WORK/buildah-context-$label"
  # 3 random bytes become 4 characters, plus newlines: enough to cut the exact size from.
  head -c "$((BYTES_OF[$size] * 3 / 4 + 3))" /dev/urandom | base64 -w 76 >"$WORK/input-$label/$name"
  truncate -s "${BYTES_OF[$size]}" "$WORK/input-$label/$name"
  ln "$WORK/input-$label/$name" "$WORK/crane-stage-$label/opt/app/$name"
  ln "$WORK/input-$label/$name" "$WORK/buildah-context-$label/$name"
  INPUT_LABELS+=("$label")
  INPUT_FILES[$label]=1
  INPUT_BYTES[$label]=${BYTES_OF[$size]}
}

# ---- the timed commands (same arguments as in run.sh: base, input label, destination, scratch)
# What each input adds: the data directory's contents into /opt/app/data/, or the one file.
imgbuild_add_flag() {
  if [[ $1 == many-* ]]; then echo "$WORK/input-$1/data/:/opt/app/data/"; else echo "$WORK/input-$1/file.b64:/opt/app/file.b64"; fi
}

# Every command a tool runs goes through GNU time, which appends "user system maxrss(KiB)"
# to RUN_STATS: CPU seconds say how much work a tool does whatever the machine's load.
RUN_STATS=
measured() { /usr/bin/time -a -o "$RUN_STATS" -f '%U %S %M' "$@"; }

tool_imgbuild() {
  local base=$1 label=$2 dest=$3
  measured "${IMGBUILD_CMD[@]}" add --from "$base" --add "$(imgbuild_add_flag "$label")" --to "$dest" --insecure
}

tool_crane() {
  local base=$1 label=$2 dest=$3 scratch=$4
  measured tar -C "$WORK/crane-stage-$label" -cf "$scratch/layer.tar" opt &&
    measured "$CRANE_BIN" --insecure append -b "$base" -f "$scratch/layer.tar" -t "$dest"
}

tool_buildah() {
  local base=$1 label=$2 dest=$3 scratch=$4 copy
  if [[ $label == many-* ]]; then copy='COPY data/ /opt/app/data/'; else copy='COPY file.b64 /opt/app/file.b64'; fi
  printf 'FROM %s\n%s\n' "$base" "$copy" >"$scratch/Dockerfile"
  local storage=(--root "$scratch/root" --runroot "$scratch/runroot" --storage-driver vfs)
  measured buildah "${storage[@]}" bud --tls-verify=false -f "$scratch/Dockerfile" -t "$dest" "$WORK/buildah-context-$label" &&
    measured buildah "${storage[@]}" push --tls-verify=false "$dest"
}

# CPU seconds (user + system, summed over the commands) and the largest peak RSS in MB.
cpu_seconds() { awk '{ cpu += $1 + $2 } END { printf "%.2f", cpu }' "$1"; }
peak_megabytes() { awk '$3 > max { max = $3 } END { printf "%.0f", max / 1024 }' "$1"; }

LAST_LAYER_BYTES=
# Untimed: the pushed image's top layer holds as many regular files under opt/app/ as the
# input has; a tool that skipped work must not win.
verify_output() {
  local dest=$1 label=$2 log=$3 digest found
  {
    digest=$(crane manifest "$dest" | node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d));
      process.stdin.on("end", () => { const m = JSON.parse(s); console.log(m.layers[m.layers.length - 1].digest); });') || return 1
    crane blob "${dest%:*}@$digest" >"$WORK/verify-layer" || return 1
    LAST_LAYER_BYTES=$(stat -c %s "$WORK/verify-layer")
    found=$(tar -tvf "$WORK/verify-layer" | awk '$1 ~ /^-/ && $NF ~ /(^|\/)opt\/app\// { n++ } END { print n + 0 }') || return 1
    rm -f "$WORK/verify-layer"
    if ((found != INPUT_FILES[$label])); then
      echo "verify: the top layer of $dest holds $found files under opt/app/, expected ${INPUT_FILES[$label]}"
      return 1
    fi
    echo "verify: $dest holds the ${INPUT_FILES[$label]} files in its new top layer"
  } >>"$log" 2>&1
}

# ---- run -------------------------------------------------------------------------------------
declare -A TIMES OUTCOME LAYER_BYTES CPU RSS # "label|tool" -> ...
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0

start_registry
progress "registry on $REGISTRY (pid $REGISTRY_PID); logs in $LOGS"
progress "pushing the $BASE_SIZE base"
build_base "$BASE_SIZE"
BASE=$REGISTRY/bench/base-$(lower "$BASE_SIZE"):v1
CURRENT_BASE=$BASE
for cell in $CELLS; do
  if [[ $cell == many-files ]]; then
    for count in $MANY_COUNTS; do
      progress "writing $count small files"
      prepare_many_files "$count"
    done
  else
    progress "writing the $COMPRESSIBLE base64 file"
    prepare_compressible "$COMPRESSIBLE"
  fi
done

for label in "${INPUT_LABELS[@]}"; do
  for tool in $TOOLS; do
    OUTCOME["$label|$tool"]=ok
    TIMES["$label|$tool"]=""
    CPU["$label|$tool"]=""
    RSS["$label|$tool"]=""
  done
  # Tools take turns inside each round, so drift in background load hits them all alike.
  for run in $(seq "$RUNS"); do
    for tool in $TOOLS; do
      key="$label|$tool"
      [[ ${OUTCOME[$key]} == ok ]] || continue
      dest=$REGISTRY/bench/out-$tool-$label-run$run:latest
      log=$LOGS/$tool-$label-run$run.log
      RUN_STATS=$LOGS/$tool-$label-run$run.stats
      : >"$RUN_STATS"
      if measure_run "$key" "$tool" "$BASE" "$label" "$dest" "$log" "$run" "$label"; then
        CPU[$key]+=" $(cpu_seconds "$RUN_STATS")"
        RSS[$key]+=" $(peak_megabytes "$RUN_STATS")"
      fi
    done
  done
done

# ---- report ----------------------------------------------------------------------------------
declare -A MEDIAN
for key in "${!OUTCOME[@]}"; do
  if [[ ${OUTCOME[$key]} == ok && -n ${TIMES[$key]} ]]; then
    MEDIAN[$key]=$(median "${TIMES[$key]}")
  fi
done

echo "## imgbuild layer benchmark"
echo
echo "- started $STARTED_AT, took ${SECONDS}s; $(nproc) CPUs; load average (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- registry: $(/usr/bin/docker-registry --version 2>/dev/null | awk '{ print $NF }') on $REGISTRY (plain HTTP, filesystem storage); base: busybox + $BASE_SIZE random"
versions=""
for tool in $TOOLS; do versions+="$tool $(tool_version "$tool"), "; done
echo "- tools: ${versions%, }"
has_tool imgbuild && echo "- imgbuild: $IMGBUILD_BUILD"
echo "- runs per cell: $RUNS; seconds are wall time of the whole command, median of the runs"
echo
echo "| input | tool | runs (s) | median (s) | MB/s | vs imgbuild | CPU (s) | new layer (MB) | peak RSS (MB) |"
echo "|---|---|---|---|---|---|---|---|---|"
for label in "${INPUT_LABELS[@]}"; do
  for tool in $TOOLS; do
    key="$label|$tool"
    runs=$(sed 's/^ //' <<<"${TIMES[$key]}")
    if [[ ${OUTCOME[$key]} != ok ]]; then
      echo "| $label | $tool | ${runs:-—} | ${OUTCOME[$key]} | — | — | — | — | — |"
      continue
    fi
    med=${MEDIAN[$key]}
    rate=$(megabytes_per_second "${INPUT_BYTES[$label]}" "$med")
    ratio="—"
    if [[ -n ${MEDIAN["$label|imgbuild"]:-} ]]; then
      ratio=$(awk -v t="$med" -v i="${MEDIAN["$label|imgbuild"]}" 'BEGIN { printf "%.2fx", t / i }')
    fi
    layer=$(awk -v b="${LAYER_BYTES[$key]:-0}" 'BEGIN { printf "%.3f", b / 1e6 }')
    echo "| $label | $tool | $runs | $med | $rate | $ratio | $(median "${CPU[$key]}") | $layer | $(median "${RSS[$key]}" | cut -d. -f1) |"
  done
done
echo
echo "vs imgbuild = tool's median / imgbuild's median (above 1 = slower than imgbuild). MB/s = content bytes / 10^6 / median seconds. CPU = user + system seconds of the tool's commands (GNU time), median of the runs: the work done, whatever the load. new layer = compressed size of the pushed layer (run 1). peak RSS = median of the largest maximum resident set size among the tool's commands."
echo
echo "### Goals"
echo
for label in "${INPUT_LABELS[@]}"; do
  i=${MEDIAN["$label|imgbuild"]:-}
  c=${MEDIAN["$label|crane"]:-}
  if [[ $label == many-* ]]; then text="$label: imgbuild wall time <= tar + crane append's"; else text="$label: imgbuild throughput >= crane append's"; fi
  if [[ -z $i || -z $c ]]; then
    echo "- SKIP: $text (imgbuild or crane not measured)"
  else
    verdict=$(awk -v i="$i" -v c="$c" 'BEGIN { print (i <= c) ? "PASS" : "FAIL" }')
    echo "- $verdict: $text (imgbuild ${i}s, crane ${c}s, $(awk -v i="$i" -v c="$c" 'BEGIN { printf "%.2fx", c / i }') crane's time)"
  fi
done

if ((FAILURES > 0)); then
  progress "$FAILURES tool run(s) failed or produced a wrong image; logs in $LOGS"
  exit 1
fi
# Goals are reported, not enforced: a slow run on a busy machine is not a broken benchmark.
exit 0
