#!/usr/bin/env bash
# Build the OCI distribution-spec conformance suite (a Ginkgo test binary, `go test -c` of the
# Go module github.com/opencontainers/distribution-spec/conformance) once per module version,
# cached under ${IMGBUILD_CACHE:-/var/cache/imgbuild}. Prints the binary's path on stdout.
#
# The suite is released with the spec (tag v1.1.1, commit a139cc42), but the conformance module
# has no tag of its own, so it is fetched by pseudo-version. When the module proxy in use cannot
# serve that commit (an offline mirror), the classic suite's latest version it does serve is
# built instead, and the choice is said on stderr (and recorded in the report's environment).
set -euo pipefail
command -v go >/dev/null || { echo "distribution-conformance: Go is needed to build the OCI conformance suite (.ci/run and the testbed use the same Go)" >&2; exit 1; }
MODULE=github.com/opencontainers/distribution-spec/conformance
SPEC_V1_1_1=v0.0.0-20250123160558-a139cc423184
FALLBACK=v0.0.0-20231101194043-f2182352d4cc
CACHE=${IMGBUILD_CACHE:-/var/cache/imgbuild}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

for VERSION in ${OCI_CONFORMANCE_VERSION:-$SPEC_V1_1_1 $FALLBACK}; do
  OUT=$CACHE/distribution-conformance-$VERSION/bin/conformance.test
  if [[ -x $OUT ]]; then echo "$OUT"; exit 0; fi
  BUILD=$(mktemp -d)
  trap 'chmod -R u+w "$BUILD" 2>/dev/null; rm -rf "$BUILD"' EXIT
  if ! (cd "$BUILD" && GOMODCACHE=$BUILD/mod go mod download -json "$MODULE@$VERSION" >"$BUILD/download.json" 2>&1); then
    echo "distribution-conformance: $MODULE@$VERSION is not available from $(go env GOPROXY)" >&2
    chmod -R u+w "$BUILD" 2>/dev/null; rm -rf "$BUILD"; trap - EXIT
    continue
  fi
  [[ $VERSION == "$SPEC_V1_1_1" ]] || echo "distribution-conformance: building $VERSION instead of the v1.1.1 commit" >&2
  echo "distribution-conformance $VERSION: building (first time only)" >&2
  SRC=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' "$BUILD/download.json")
  cp -r "$SRC" "$BUILD/src" && chmod -R u+w "$BUILD/src"
  mkdir -p "$(dirname "$OUT")"
  (cd "$BUILD/src" && GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)} go test -c -trimpath -ldflags "-s -w" -o "$OUT.tmp" .) >&2
  mv "$OUT.tmp" "$OUT"
  echo "$OUT"
  exit 0
done
echo "distribution-conformance: no version of $MODULE could be fetched; check GOPROXY" >&2
exit 1
