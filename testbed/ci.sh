#!/usr/bin/env bash
# CI entry point for the cluster tests:
#   install (Debian packages, cached Go builds, imgbuild if not built) -> up -> test/cluster/*.sh -> always down.
# Exits non-zero, with the failing component's logs, if anything does not work. Never skips.
# Env: IMGBUILD_CACHE (default /var/cache/imgbuild) keeps the Go builds between runs.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TB=$ROOT/testbed/testbed
PKGS=(containerd runc containernetworking-plugins docker-registry apache2-utils skopeo umoci busybox-static
      openssl iptables conntrack jq curl ca-certificates iproute2 util-linux)
t0=$SECONDS
say() { echo "ci: $* [$((SECONDS - t0))s]" >&2; }

[[ $(id -u) == 0 ]] || { echo "ci: must run as root (the testbed runs a kubelet)" >&2; exit 1; }

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    { echo "ci: apt-get install failed" >&2; exit 1; }
fi
command -v go >/dev/null || { echo "ci: no Go toolchain (Go >= 1.25 needed; Debian's golang-go is too old)" >&2; exit 1; }
command -v node >/dev/null || { echo "ci: no node on PATH (imgbuild, Node >= 20, builds the testbed images)" >&2; exit 1; }
# imgbuild builds the testbed's images: build it if 'npm ci' has not (never fall back to other tools)
if [[ ! -f $ROOT/dist/imgbuild.mjs ]]; then
  say "npm run build (dist/imgbuild.mjs missing)"
  [[ -d $ROOT/node_modules ]] || { echo "ci: $ROOT/node_modules missing: run 'npm ci' first" >&2; exit 1; }
  (cd "$ROOT" && npm run build >&2) && [[ -f $ROOT/dist/imgbuild.mjs ]] ||
    { echo "ci: 'npm run build' did not produce dist/imgbuild.mjs" >&2; exit 1; }
fi

dump() {
  echo "===== testbed status =====" >&2; "$TB" status >&2 || true
  LINES_PER_LOG=${LINES_PER_LOG:-60} "$TB" logs "$@" >&2 || true
}
cleanup() { say "down"; "$TB" down >&2 || true; }
trap cleanup EXIT

say "build (cached under ${IMGBUILD_CACHE:-/var/cache/imgbuild})"
if ! "$TB" build >&2; then echo "ci: build failed" >&2; exit 1; fi
say "up"
if ! kubeconfig=$("$TB" up); then echo "ci: cluster did not come up" >&2; dump; exit 1; fi
say "cluster up: $kubeconfig"
rc=0
for t in "$ROOT"/test/cluster/*.sh; do
  say "test $(basename "$t")"
  if ! "$t"; then echo "ci: FAILED $(basename "$t")" >&2; rc=1; dump kubelet containerd kube-proxy coredns registry-tls registry-http registry-auth; fi
done
say "done rc=$rc"
exit $rc
