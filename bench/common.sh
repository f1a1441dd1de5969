# Shared settings and helpers for the scripts in bench/ (sourced, not executed).

# Pinned crane version: the latest the Go module proxy served when the benchmark was written.
CRANE_VERSION=v0.22.1
CRANE_MODULE=github.com/google/go-containerregistry/cmd/crane

BENCH_CACHE=${IMGBUILD_CACHE:-/var/cache/imgbuild}
# Keyed by version, so bumping CRANE_VERSION builds a new binary next to the old one.
CRANE_BIN=$BENCH_CACHE/crane-$CRANE_VERSION/bin/crane

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)

# Debian packages the benchmark needs, as "binary:package".
BENCH_APT_NEEDS=(
  /usr/bin/docker-registry:docker-registry
  /usr/bin/buildah:buildah
  /usr/bin/skopeo:skopeo
  /bin/busybox:busybox-static
  /usr/bin/hyperfine:hyperfine
  /usr/bin/time:time
)

# ---- helpers shared by run.sh and layers.sh (the caller sets TOOLS, has_tool, BYTES_OF) ----
fail_usage() {
  echo "bench: $*" >&2
  exit 2
}

progress() { echo "bench: $*" >&2; }

# ---- work area, logs, cleanup --------------------------------------------------------------
cleanup() {
  local status=$?
  if [[ -n $REGISTRY_PID ]]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  if ((FAILURES > 0 || status != 0)) || [[ ${BENCH_KEEP_LOGS:-0} == 1 ]]; then
    echo "bench: logs kept in $LOGS" >&3
  else
    rm -rf "$LOGS"
  fi
}

# Makes the work and log dirs, removes them on exit (logs kept on failure), and pins the
# imgbuild build (IMGBUILD_CMD, IMGBUILD_BUILD). Needs TOOLS/has_tool from the caller.
bench_prepare_workdir() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-bench.XXXXXX")
  LOGS=$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-bench-logs.XXXXXX")
  REGISTRY_PID=
  FAILURES=0
  # The script's own stderr: a signal can run the exit trap while a tool's output is redirected
  # to its log, and the "logs kept" line must still reach the terminal.
  exec 3>&2
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  IMGBUILD_BUILD="command from BENCH_IMGBUILD"
  if [[ -n ${BENCH_IMGBUILD:-} ]]; then
    read -r -a IMGBUILD_CMD <<<"$BENCH_IMGBUILD"
  elif has_tool imgbuild; then
    # What users run: the `imgbuild` command npm links (dist/imgbuild, a shell launcher on the
    # CommonJS bundle), its code caches in the work directory (the --version below fills
    # none: each command has its own). A private copy pins this run to one build.
    mkdir "$WORK/dist"
    cp "$REPO_ROOT/dist/imgbuild" "$REPO_ROOT/dist/cli.cjs" "$REPO_ROOT/dist/imgbuild.cjs" "$REPO_ROOT/dist/kubernetes-client.cjs" "$WORK/dist/"
    IMGBUILD_CMD=(env "XDG_CACHE_HOME=$WORK/xdg-cache" "$WORK/dist/imgbuild")
    "${IMGBUILD_CMD[@]}" --version >/dev/null 2>&1 ||
      fail_usage "the copy of dist/imgbuild does not run (was it being rebuilt?); run 'npm run build' and retry"
    IMGBUILD_BUILD="dist/imgbuild sha256 $(find "$WORK/dist" -type f | sort | xargs cat | sha256sum | cut -c1-12), built $(date -u -r "$REPO_ROOT/dist/imgbuild.cjs" +%Y-%m-%dT%H:%M:%SZ)"
  fi
}

# ---- registry ----------------------------------------------------------------------------
free_port() {
  node -e 'const s = require("node:net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Sets REGISTRY (host:port) and REGISTRY_PID; the cleanup kills it. Argument: the registry's
# log file (default: $LOGS/registry.log).
start_registry() {
  local log=${1:-$LOGS/registry.log} port
  port=$(free_port)
  mkdir -p "$WORK/registry-storage"
  # Request logging off: it costs CPU on every request, for every tool alike.
  cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry-storage
http:
  addr: 127.0.0.1:$port
EOF
  /usr/bin/docker-registry serve "$WORK/registry.yml" >"$log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY=127.0.0.1:$port
  local attempt
  for attempt in $(seq 50); do
    if curl -fsS -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null; then
      return 0
    fi
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "bench: the registry did not start on $REGISTRY; its log:" >&2
  cat "$log" >&2
  exit 1
}

crane() { "$CRANE_BIN" --insecure "$@"; }

lower() { tr '[:upper:]' '[:lower:]' <<<"$1"; }

# ---- inputs: bases (pushed with crane, never imgbuild) and the files to add -----------------
# A base is busybox-static plus one layer of random bytes split over four files, so neither
# gzip nor any tool can shrink it; every tool starts from the same pushed base.
build_base() {
  local size=$1 label dir quarter i
  label=$(lower "$size")
  dir=$WORK/base-$label
  mkdir -p "$dir/busybox/bin" "$dir/random/data"
  cp /bin/busybox "$dir/busybox/bin/busybox"
  ln -s busybox "$dir/busybox/bin/sh"
  quarter=$((BYTES_OF[$size] / 4))
  for i in 0 1 2 3; do
    head -c "$quarter" /dev/urandom >"$dir/random/data/random-$i"
  done
  tar -C "$dir/busybox" -cf "$dir/busybox.tar" .
  tar -C "$dir/random" -cf "$dir/random.tar" .
  push_base "$size" PATH=/bin "$dir/busybox.tar" "$dir/random.tar"
  rm -rf "$dir"
}

# Pushes layer tars (bottom first) with crane as $REGISTRY/bench/base-<size>:v1 (linux/amd64,
# Cmd /bin/sh, the given PATH=... env). Arguments: size, env, tar files.
push_base() {
  local size=$1 env=$2 label tar args=()
  shift 2
  label=$(lower "$size")
  for tar in "$@"; do args+=(-f "$tar"); done
  {
    crane append "${args[@]}" -t "$REGISTRY/bench/base-$label:staging"
    crane mutate "$REGISTRY/bench/base-$label:staging" --set-platform linux/amd64 \
      --cmd /bin/sh --env "$env" -t "$REGISTRY/bench/base-$label:v1"
  } >"$LOGS/base-$label.log" 2>&1 || {
    echo "bench: pushing the $size base failed; log: $LOGS/base-$label.log" >&2
    tail -n 20 "$LOGS/base-$label.log" >&2
    FAILURES=$((FAILURES + 1))
    exit 1
  }
}


LAST_SECONDS=
# Runs one tool once; sets LAST_SECONDS; returns the tool's status. Scratch space is made
# before and removed after the clock.
time_one_run() {
  local tool=$1 base=$2 size=$3 dest=$4 log=$5 scratch start end status=0
  scratch=$(mktemp -d "$WORK/scratch.XXXXXX")
  start=$(date +%s%N)
  "tool_$tool" "$base" "$size" "$dest" "$scratch" >"$log" 2>&1 || status=$?
  end=$(date +%s%N)
  rm -rf "$scratch"
  LAST_SECONDS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  return "$status"
}

LAST_LAYER_BYTES=

# One timed run of a benchmark cell: its seconds go to TIMES[KEY]; the first run's image is
# checked with the script's verify_output (LAYER_BYTES[KEY]); a failure or a wrong image marks
# OUTCOME[KEY] and counts in FAILURES. WHAT names the cell in messages. Returns 1 if the tool failed.
measure_run() { # KEY TOOL BASE INPUT DEST LOG RUN WHAT
  local key=$1 tool=$2 base=$3 input=$4 dest=$5 log=$6 run=$7 what=$8
  if ! time_one_run "$tool" "$base" "$input" "$dest" "$log"; then
    OUTCOME[$key]=failed
    FAILURES=$((FAILURES + 1))
    progress "$tool failed ($what, run $run); last lines of $log:"
    tail -n 15 "$log" | sed 's/^/    /' >&2
    return 1
  fi
  progress "$tool, $what, run $run: ${LAST_SECONDS}s"
  TIMES[$key]+=" $LAST_SECONDS"
  ((run == 1)) || return 0
  if verify_output "$dest" "$input" "$log"; then
    LAYER_BYTES[$key]=$LAST_LAYER_BYTES
  else
    OUTCOME[$key]=unverified
    FAILURES=$((FAILURES + 1))
    progress "$tool produced a wrong image ($dest); see $log"
  fi
}

median() {
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) exit 1
      if (NR % 2) printf "%.3f", v[(NR + 1) / 2]
      else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

megabytes_per_second() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }

tool_version() {
  case $1 in
  imgbuild) "${IMGBUILD_CMD[@]}" --version 2>/dev/null | head -n1 || echo unknown ;;
  crane) echo "$CRANE_VERSION" ;;
  buildah) buildah --version | awk '{ print $3 }' ;;
  esac
}
