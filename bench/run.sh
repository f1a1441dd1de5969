#!/usr/bin/env bash
# Benchmark: add one file to an image that is already in a registry, with imgbuild, crane
# append and buildah (bud + push), all against ONE local registry started here.
# Prints a markdown table of medians and the goal checks on stdout; progress goes to stderr.
#
# Knobs (environment):
#   BENCH_RUNS=3                      runs per cell; the table shows the median
#   BENCH_SIZES="10M 200M 1G"         base image sizes (random, incompressible bytes)
#   BENCH_TOOLS="imgbuild crane buildah"
#   BENCH_FILES="1K 200M"             sizes of the file that is added
#   BENCH_SLOW_RUNS=$BENCH_RUNS       runs for buildah on bases of 1 GiB or more (cold pull of the
#                                     whole base each run makes these cells the slowest)
#   BENCH_PAYLOAD=random              content of the added file: random (incompressible) or base64
#                                     (base64 of random bytes: text that gzip shrinks to ~3/4)
#   BENCH_QUICK=1                     smoke test: 10M base, 1K file, 1 run (knobs above still win)
#   BENCH_KEEP_LOGS=1                 keep the per-run logs even when everything succeeded
#   BENCH_IMGBUILD="node dist/imgbuild.mjs"   command that runs imgbuild (by default a copy of
#                                     the `imgbuild` command, dist/imgbuild and what it runs,
#                                     taken at start, so a rebuild during the run cannot mix
#                                     two builds in one table)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  RUNS=${BENCH_RUNS:-1}
  SIZES=${BENCH_SIZES:-10M}
  FILES=${BENCH_FILES:-1K}
else
  RUNS=${BENCH_RUNS:-3}
  SIZES=${BENCH_SIZES:-10M 200M 1G}
  FILES=${BENCH_FILES:-1K 200M}
fi
TOOLS=${BENCH_TOOLS:-imgbuild crane buildah}
SLOW_RUNS=${BENCH_SLOW_RUNS:-$RUNS}
PAYLOAD=${BENCH_PAYLOAD:-random}
# One GiB: bases at least this big count as slow for buildah (see BENCH_SLOW_RUNS).
SLOW_BASE_BYTES=$((1024 * 1024 * 1024))

# ---- validate knobs and tools before doing anything expensive ----------------------------
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $SLOW_RUNS =~ ^[1-9][0-9]*$ ]] || fail_usage "BENCH_SLOW_RUNS must be a positive integer, got '$SLOW_RUNS'"
[[ $PAYLOAD == random || $PAYLOAD == base64 ]] || fail_usage "BENCH_PAYLOAD must be 'random' or 'base64', got '$PAYLOAD'"

declare -A BYTES_OF # size label (as given, e.g. 200M) -> bytes
for size in $SIZES $FILES; do
  bytes=$(numfmt --from=iec "$size" 2>/dev/null) ||
    fail_usage "size '$size' is not understood; use a number with an optional K, M or G suffix (e.g. 200M)"
  ((bytes > 0)) || fail_usage "size '$size' must be more than zero bytes"
  BYTES_OF[$size]=$bytes
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
[[ -x /bin/busybox ]] || fail_usage "/bin/busybox is missing (the bases contain it); run: bash bench/setup.sh"
if has_tool buildah; then
  command -v buildah >/dev/null || fail_usage "buildah is missing; run: bash bench/setup.sh"
fi
if has_tool imgbuild && [[ -z ${BENCH_IMGBUILD:-} && ! -x $REPO_ROOT/dist/imgbuild ]]; then
  fail_usage "$REPO_ROOT/dist/imgbuild is missing; run 'npm run build' in $REPO_ROOT (or drop imgbuild from BENCH_TOOLS)"
fi

bench_prepare_workdir

file_name() { echo "file$(lower "$1")"; }

prepare_payload() {
  local size=$1 name
  name=$(file_name "$size")
  mkdir -p "$WORK/payload" "$WORK/crane-stage-$name/opt/app" "$WORK/buildah-context-$name"
  if [[ $PAYLOAD == random ]]; then
    head -c "${BYTES_OF[$size]}" /dev/urandom >"$WORK/payload/$name"
  else
    # 3 random bytes become 4 characters, plus newlines: enough to cut the exact size from.
    head -c "$((BYTES_OF[$size] * 3 / 4 + 3))" /dev/urandom | base64 -w 76 >"$WORK/payload/$name"
    truncate -s "${BYTES_OF[$size]}" "$WORK/payload/$name"
  fi
  # Hard links: every tool reads the very same inode, equally warm in the page cache.
  ln "$WORK/payload/$name" "$WORK/crane-stage-$name/opt/app/$name"
  ln "$WORK/payload/$name" "$WORK/buildah-context-$name/$name"
}

# ---- the timed commands --------------------------------------------------------------------
# Each gets: base reference, payload size label, destination reference, scratch directory.
tool_imgbuild() {
  local base=$1 size=$2 dest=$3 name
  name=$(file_name "$size")
  "${IMGBUILD_CMD[@]}" add --from "$base" --add "$WORK/payload/$name:/opt/app/$name" \
    --to "$dest" --insecure
}

# crane append wants a tar of the new layer; imgbuild takes the file itself, so building the
# tar is part of crane's timed work.
tool_crane() {
  local base=$1 size=$2 dest=$3 scratch=$4 name
  name=$(file_name "$size")
  tar -C "$WORK/crane-stage-$name" -cf "$scratch/layer.tar" opt &&
    crane append -b "$base" -f "$scratch/layer.tar" -t "$dest"
}

# A fresh --root/--runroot per run: buildah pulls the whole base every time, like a new CI
# builder or a Kaniko Job pod would.
tool_buildah() {
  local base=$1 size=$2 dest=$3 scratch=$4 name context
  name=$(file_name "$size")
  context=$WORK/buildah-context-$name
  printf 'FROM %s\nCOPY %s /opt/app/%s\n' "$base" "$name" "$name" >"$scratch/Dockerfile"
  local storage=(--root "$scratch/root" --runroot "$scratch/runroot" --storage-driver vfs)
  buildah "${storage[@]}" bud --tls-verify=false -f "$scratch/Dockerfile" -t "$dest" "$context" &&
    buildah "${storage[@]}" push --tls-verify=false "$dest"
}

# with the right size; a tool that skipped work must not win.
verify_output() {
  local dest=$1 size=$2 log=$3 name manifest counts base_layers layers last_digest listing
  name=$(file_name "$size")
  {
    manifest=$(crane manifest "$dest") || return 1
    counts=$(node -e '
      const m = JSON.parse(process.argv[1]);
      console.log(m.layers.length, m.layers[m.layers.length - 1].digest);' "$manifest") || return 1
    read -r layers last_digest <<<"$counts"
    base_layers=$(crane manifest "$CURRENT_BASE" | node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d));
      process.stdin.on("end", () => console.log(JSON.parse(s).layers.length));') || return 1
    if ((layers != base_layers + 1)); then
      echo "verify: expected $((base_layers + 1)) layers in $dest, found $layers"
      return 1
    fi
    crane blob "${dest%:*}@$last_digest" >"$WORK/verify-layer" || return 1
    LAST_LAYER_BYTES=$(stat -c %s "$WORK/verify-layer")
    listing=$(tar -tvf "$WORK/verify-layer") || return 1
    rm -f "$WORK/verify-layer"
    if ! awk -v want="$name" -v bytes="${BYTES_OF[$size]}" '
        $NF ~ ("(^|/)opt/app/" want "$") && $3 == bytes { found = 1 }
        END { exit !found }' <<<"$listing"; then
      echo "verify: the last layer of $dest has no opt/app/$name of ${BYTES_OF[$size]} bytes; it lists:"
      echo "$listing"
      return 1
    fi
    echo "verify: $dest has opt/app/$name (${BYTES_OF[$size]} bytes) in its new top layer"
  } >>"$log" 2>&1
}

# ---- run -------------------------------------------------------------------------------------
declare -A TIMES    # "size|file|tool" -> space-separated seconds of the successful runs
declare -A OUTCOME  # "size|file|tool" -> ok | failed | unverified
declare -A LAYER_BYTES # "size|file|tool" -> compressed size of the new layer, from run 1
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SECONDS=0

start_registry
progress "registry on $REGISTRY (pid $REGISTRY_PID); logs in $LOGS"
for file in $FILES; do
  prepare_payload "$file"
done

for size in $SIZES; do
  progress "pushing the $size base"
  build_base "$size"
  base_label=$(lower "$size")
  CURRENT_BASE=$REGISTRY/bench/base-$base_label:v1
  for file in $FILES; do
    file_label=$(lower "$file")
    for tool in $TOOLS; do
      OUTCOME["$size|$file|$tool"]=ok
      TIMES["$size|$file|$tool"]=""
    done
    # Tools take turns inside each round, so drift in background load hits them all alike.
    for run in $(seq "$RUNS"); do
      for tool in $TOOLS; do
        key="$size|$file|$tool"
        if [[ $tool == buildah ]] && ((BYTES_OF[$size] >= SLOW_BASE_BYTES && run > SLOW_RUNS)); then
          continue
        fi
        [[ ${OUTCOME[$key]} == ok ]] || continue
        # A fresh repository per run: blobs pushed by an earlier run must not make a later
        # one cheaper. Same registry as the base, so tools may cross-repo mount its layers.
        dest=$REGISTRY/bench/out-$tool-$base_label-run$run:$file_label
        log=$LOGS/$tool-base$base_label-file$file_label-run$run.log
        measure_run "$key" "$tool" "$CURRENT_BASE" "$file" "$dest" "$log" "$run" "$size base, $file file" || true
      done
    done
  done
done

# ---- report ----------------------------------------------------------------------------------
declare -A MEDIAN # "size|file|tool" -> median seconds, only for cells that fully succeeded
for key in "${!OUTCOME[@]}"; do
  if [[ ${OUTCOME[$key]} == ok && -n ${TIMES[$key]} ]]; then
    MEDIAN[$key]=$(median "${TIMES[$key]}")
  fi
done

echo "## imgbuild benchmark"
echo
echo "- started $STARTED_AT, took ${SECONDS}s; $(nproc) CPUs; load average (1/5/15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- registry: $(/usr/bin/docker-registry --version 2>/dev/null | awk '{ print $NF }') on $REGISTRY (plain HTTP, filesystem storage)"
versions=""
for tool in $TOOLS; do versions+="$tool $(tool_version "$tool"), "; done
echo "- tools: ${versions%, }"
has_tool imgbuild && echo "- imgbuild: $IMGBUILD_BUILD"
echo "- added file content: $PAYLOAD"
echo "- runs per cell: $RUNS (buildah on bases of 1 GiB or more: $SLOW_RUNS); seconds are wall time of the whole command, median of the runs"
echo
echo "| base | file | tool | runs (s) | median (s) | MB/s | vs imgbuild | new layer (MB) |"
echo "|---|---|---|---|---|---|---|---|"
for size in $SIZES; do
  for file in $FILES; do
    for tool in $TOOLS; do
      key="$size|$file|$tool"
      runs=$(sed 's/^ //' <<<"${TIMES[$key]}")
      if [[ ${OUTCOME[$key]} != ok ]]; then
        echo "| $size | $file | $tool | ${runs:-—} | ${OUTCOME[$key]} | — | — | — |"
        continue
      fi
      med=${MEDIAN[$key]}
      rate="—"
      # Throughput only means something for the big file; for 1K it is all overhead.
      ((BYTES_OF[$file] >= 1000000)) && rate=$(megabytes_per_second "${BYTES_OF[$file]}" "$med")
      ratio="—"
      if [[ -n ${MEDIAN["$size|$file|imgbuild"]:-} ]]; then
        ratio=$(awk -v t="$med" -v i="${MEDIAN["$size|$file|imgbuild"]}" 'BEGIN { printf "%.2fx", t / i }')
      fi
      layer=$(awk -v b="${LAYER_BYTES[$key]:-0}" 'BEGIN { printf "%.3f", b / 1e6 }')
      echo "| $size | $file | $tool | $runs | $med | $rate | $ratio | $layer |"
    done
  done
done
echo
echo "vs imgbuild = tool's median / imgbuild's median (above 1 = slower than imgbuild). MB/s = file bytes / 10^6 / median seconds. new layer = compressed size of the pushed layer (run 1)."
echo

# Goal lines: PASS / FAIL from this run's medians, SKIP when the cell was not measured.
GOAL_FAILS=0
goal_line() { # verdict, text
  echo "- $1: $2"
  [[ $1 == FAIL ]] && GOAL_FAILS=$((GOAL_FAILS + 1))
  return 0
}
cell_median() { echo "${MEDIAN["$1|$2|$3"]:-}"; }
missing_reason() { # size file tool
  if ! has_tool "$3"; then echo "$3 not in BENCH_TOOLS"; else echo "$3 ${OUTCOME["$1|$2|$3"]:-not run}"; fi
}
# A goal whose imgbuild cell is missing fails, unless imgbuild was left out on purpose.
imgbuild_missing_verdict() { if has_tool imgbuild; then echo FAIL; else echo SKIP; fi; }

echo "### Goals"
echo
small=1K
big=200M
# goal_vs_crane SIZE FILE TEXT: PASS when imgbuild's median wall time is at most crane's
# (for the big file the line shows throughput, the same comparison).
goal_vs_crane() {
  local size=$1 file=$2 text=$3 i c verdict detail
  if [[ " $FILES " != *" $file "* ]]; then
    goal_line SKIP "$text ($file not in BENCH_FILES)"
    return
  fi
  i=$(cell_median "$size" "$file" imgbuild)
  c=$(cell_median "$size" "$file" crane)
  if [[ -z $i ]]; then
    goal_line "$(imgbuild_missing_verdict)" "$text ($(missing_reason "$size" "$file" imgbuild))"
  elif [[ -z $c ]]; then
    goal_line SKIP "$text ($(missing_reason "$size" "$file" crane))"
  else
    verdict=$(awk -v i="$i" -v c="$c" 'BEGIN { print (i <= c) ? "PASS" : "FAIL" }')
    if [[ $file == "$big" ]]; then
      detail="imgbuild $(megabytes_per_second "${BYTES_OF[$big]}" "$i") MB/s, crane $(megabytes_per_second "${BYTES_OF[$big]}" "$c") MB/s"
    else
      detail="imgbuild ${i}s, crane ${c}s"
    fi
    goal_line "$verdict" "$text ($detail)"
  fi
}

for size in $SIZES; do
  goal_vs_crane "$size" $small "1K file on the $size base, imgbuild wall time <= crane append's"
done

text="1K file on the 1G base, imgbuild at least 20x faster than buildah bud + push"
if [[ " $SIZES " != *" 1G "* || " $FILES " != *" $small "* ]]; then
  goal_line SKIP "$text (1G base or 1K file not measured)"
elif [[ -z $(cell_median 1G $small imgbuild) ]]; then
  goal_line "$(imgbuild_missing_verdict)" "$text ($(missing_reason 1G $small imgbuild))"
elif [[ -z $(cell_median 1G $small buildah) ]]; then
  goal_line SKIP "$text ($(missing_reason 1G $small buildah))"
else
  i=$(cell_median 1G $small imgbuild)
  b=$(cell_median 1G $small buildah)
  verdict=$(awk -v i="$i" -v b="$b" 'BEGIN { print (b / i >= 20) ? "PASS" : "FAIL" }')
  goal_line "$verdict" "$text (imgbuild ${i}s, buildah ${b}s, $(awk -v i="$i" -v b="$b" 'BEGIN { printf "%.1fx", b / i }'))"
fi

for size in $SIZES; do
  goal_vs_crane "$size" $big "200M file on the $size base, imgbuild throughput >= crane append's"
done

if ((FAILURES > 0)); then
  progress "$FAILURES tool run(s) failed or produced a wrong image; logs in $LOGS"
  exit 1
fi
# Goals are reported, not enforced: a slow run on a busy machine is not a broken benchmark.
exit 0
