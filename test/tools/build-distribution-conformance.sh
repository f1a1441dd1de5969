#!/usr/bin/env bash
# Build the OCI distribution-spec conformance suite (Go module
# github.com/opencontainers/distribution-spec/conformance) once per module version, cached under
# ${IMGBUILD_CACHE:-/var/cache/imgbuild}. Prints the binary's path on stdout.
#
# The module has no tag of its own, so it is fetched by pseudo-version, first found wins:
#   1. the spec's v1.1.1 commit (a139cc42), the suite released with the spec;
#   2. a 2026-08-31 commit (97274622), newer than v1.1.1: the rewritten suite (a plain program
#      configured by OCI_REGISTRY, OCI_API_*, OCI_DATA_*), later than v1.1.1 in the same repository;
#   3. a 2023 commit (f2182352), the classic Ginkgo suite (`go test -c`), for a module proxy that
#      serves neither (an offline mirror).
# OCI_CONFORMANCE_VERSION=<pseudo-version> pins one. Which one was built, and why, goes to stderr.
set -euo pipefail
command -v go >/dev/null || { echo "distribution-conformance: Go is needed to build the OCI conformance suite (.ci/run and the testbed use the same Go)" >&2; exit 1; }
MODULE=github.com/opencontainers/distribution-spec/conformance
SPEC_V1_1_1=v0.0.0-20250123160558-a139cc423184
NEWER=v0.0.0-20260831232431-97274622c111
FALLBACK=v0.0.0-20231101194043-f2182352d4cc
CACHE=${IMGBUILD_CACHE:-/var/cache/imgbuild}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

MISSING=()
for VERSION in ${OCI_CONFORMANCE_VERSION:-$SPEC_V1_1_1 $NEWER $FALLBACK}; do
  DIR=$CACHE/distribution-conformance-$VERSION/bin
  # The rewritten suite is a program (bin/conformance); the classic one a test binary.
  for OUT in "$DIR/conformance" "$DIR/conformance.test"; do
    if [[ -x $OUT ]]; then
      ((${#MISSING[@]})) && echo "distribution-conformance: using $VERSION (built before) because the proxy does not serve ${MISSING[*]}" >&2
      echo "$OUT"; exit 0
    fi
  done
  BUILD=$(mktemp -d)
  trap 'chmod -R u+w "$BUILD" 2>/dev/null; rm -rf "$BUILD"' EXIT
  if ! (cd "$BUILD" && GOMODCACHE=$BUILD/mod go mod download -json "$MODULE@$VERSION" >"$BUILD/download.json" 2>&1); then
    echo "distribution-conformance: $MODULE@$VERSION is not available from $(go env GOPROXY)" >&2
    MISSING+=("$VERSION")
    chmod -R u+w "$BUILD" 2>/dev/null; rm -rf "$BUILD"; trap - EXIT
    continue
  fi
  if ((${#MISSING[@]})); then
    echo "distribution-conformance: building $VERSION because the proxy does not serve ${MISSING[*]}" >&2
  fi
  SRC=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' "$BUILD/download.json")
  cp -r "$SRC" "$BUILD/src" && chmod -R u+w "$BUILD/src"
  mkdir -p "$DIR"
  if grep -q '^func main()' "$BUILD/src"/*.go; then
    OUT=$DIR/conformance
    echo "distribution-conformance $VERSION: building the suite program (first time only)" >&2
    (cd "$BUILD/src" && GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)} go build -trimpath -ldflags "-s -w -X main.Version=$VERSION" -o "$OUT.tmp" .) >&2
  else
    OUT=$DIR/conformance.test
    echo "distribution-conformance $VERSION: building the Ginkgo test binary (first time only)" >&2
    (cd "$BUILD/src" && GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)} go test -c -trimpath -ldflags "-s -w" -o "$OUT.tmp" .) >&2
  fi
  mv "$OUT.tmp" "$OUT"
  echo "$OUT"
  exit 0
done
echo "distribution-conformance: no version of $MODULE could be fetched; check GOPROXY" >&2
exit 1
