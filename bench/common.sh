# Shared settings for bench/setup.sh and bench/run.sh (sourced, not executed).

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
)

# ---- registry (for the scripts that source this file) -------------------------------------
# Needs WORK (a temp dir the caller removes). Sets REGISTRY (host:port) and REGISTRY_PID; the
# caller kills it on exit. Argument: the file for the registry's log.
free_port() {
  node -e 'const s = require("node:net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

start_registry() {
  local log=$1 port
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
