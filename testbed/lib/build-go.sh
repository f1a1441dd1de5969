#!/usr/bin/env bash
# Build the non-Kubernetes Go binaries of the testbed, each in a wrapper module, cached by version:
#   etcd (go.etcd.io/etcd/server/v3), coredns (github.com/coredns/coredns, trimmed plugin set),
#   kaniko executor (github.com/GoogleContainerTools/kaniko/cmd/executor), pause.
# Usage: build-go.sh [etcd|coredns|kaniko|pause]...   (default: all)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${IMGBUILD_CACHE:-/var/cache/imgbuild}
ETCD_VERSION=${ETCD_VERSION:-v3.6.5}
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.4}
KANIKO_VERSION=${KANIKO_VERSION:-v1.24.0}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
P=${BUILD_PROCS:-2}

wrapper() { # dir module-requirements...
  local dir=$1; shift
  mkdir -p "$dir"
  { echo "module imgbuild.local/build"; echo; echo "go 1.25.0"; echo; for r in "$@"; do echo "require $r"; done; } > "$dir/go.mod"
}

# tidy_and_build NAME VERSION SRC OUTFILE PACKAGE [LDFLAGS]: resolve the wrapper module, then one trimmed build
tidy_and_build() {
  local name=$1 version=$2 src=$3 outfile=$4 package=$5 ldflags=${6:-}
  (cd "$src" && { go mod tidy -e >/dev/null 2>&1 || true; }
   echo "$name $version: building"
   go build -p "$P" -trimpath -ldflags "-s -w $ldflags" -o "$outfile" "$package")
  echo "$name $version: built -> $outfile"
}

build_etcd() {
  local out=$CACHE/etcd-$ETCD_VERSION/bin
  [[ -x $out/etcd ]] && { echo "etcd $ETCD_VERSION: cached"; return; }
  local src=$CACHE/etcd-$ETCD_VERSION/src v=$ETCD_VERSION
  # server/v3's go.mod replaces its sibling modules with ../ paths; pin them here instead.
  wrapper "$src" "go.etcd.io/etcd/server/v3 $v" "go.etcd.io/etcd/api/v3 $v" "go.etcd.io/etcd/client/pkg/v3 $v" "go.etcd.io/etcd/client/v3 $v" "go.etcd.io/etcd/pkg/v3 $v"
  printf '//go:build tools\npackage tools\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$src/tools.go"
  tidy_and_build etcd "$v" "$src" "$out/etcd" go.etcd.io/etcd/server/v3
}

build_coredns() {
  local out=$CACHE/coredns-$COREDNS_VERSION/bin
  [[ -x $out/coredns ]] && { echo "coredns $COREDNS_VERSION: cached"; return; }
  local src=$CACHE/coredns-$COREDNS_VERSION/src
  wrapper "$src" "github.com/coredns/coredns $COREDNS_VERSION"
  cp "$HERE/src/coredns/main.go" "$src/main.go"
  tidy_and_build coredns "$COREDNS_VERSION" "$src" "$out/coredns" . "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
}

build_kaniko() {
  local out=$CACHE/kaniko-$KANIKO_VERSION/bin
  [[ -x $out/executor ]] && { echo "kaniko $KANIKO_VERSION: cached"; return; }
  local src=$CACHE/kaniko-$KANIKO_VERSION/src
  wrapper "$src" "github.com/GoogleContainerTools/kaniko $KANIKO_VERSION"
  printf '//go:build tools\npackage tools\nimport _ "github.com/GoogleContainerTools/kaniko/cmd/executor"\n' > "$src/tools.go"
  tidy_and_build kaniko "$KANIKO_VERSION" "$src" "$out/executor" github.com/GoogleContainerTools/kaniko/cmd/executor \
    "-X github.com/GoogleContainerTools/kaniko/pkg/version.version=$KANIKO_VERSION"
}

build_pause() {
  local out=$CACHE/pause/bin
  local sum; sum=$(sha256sum "$HERE/src/pause/main.go" | cut -c1-12)
  [[ -x $out/pause-$sum ]] && { ln -sf "pause-$sum" "$out/pause"; echo "pause: cached"; return; }
  local src=$CACHE/pause/src
  mkdir -p "$src" "$out"
  printf 'module imgbuild.local/pause\n\ngo 1.25.0\n' > "$src/go.mod"
  cp "$HERE/src/pause/main.go" "$src/main.go"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/pause-$sum" .)
  ln -sf "pause-$sum" "$out/pause"
  echo "pause: built -> $out/pause"
}

targets=("$@"); [[ ${#targets[@]} -gt 0 ]] || targets=(pause etcd coredns kaniko)
for t in "${targets[@]}"; do "build_$t"; done
