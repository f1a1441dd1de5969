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
