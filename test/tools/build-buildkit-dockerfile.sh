#!/usr/bin/env bash
# Build the BuildKit witness (test/tools/buildkit-dockerfile: BuildKit's own Dockerfile parser,
# lexer and converter behind a JSON interface) once per source version, cached under
# ${IMGBUILD_CACHE:-/var/cache/imgbuild}. Prints the binary's path on stdout.
set -euo pipefail
command -v go >/dev/null || { echo "buildkit-dockerfile: Go is needed to build BuildKit's frontend as a test witness (.ci/run and the testbed use the same Go)" >&2; exit 1; }
SRC=$(cd "$(dirname "$0")/buildkit-dockerfile" && pwd)
CACHE=${IMGBUILD_CACHE:-/var/cache/imgbuild}
VERSION=$(awk '/github.com\/moby\/buildkit /{print $NF}' "$SRC/go.mod")
KEY=$(cat "$SRC/main.go" "$SRC/go.mod" | sha256sum | cut -c1-12)
OUT=$CACHE/buildkit-dockerfile-$VERSION-$KEY/bin/buildkit-dockerfile
if [[ ! -x $OUT ]]; then
  echo "buildkit-dockerfile $VERSION: building (first time only)" >&2
  BUILD=$(mktemp -d)
  trap 'rm -rf "$BUILD"' EXIT
  cp "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" "$BUILD/"
  mkdir -p "$(dirname "$OUT")"
  (cd "$BUILD" && GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT.tmp" .) >&2
  mv "$OUT.tmp" "$OUT"
fi
echo "$OUT"
