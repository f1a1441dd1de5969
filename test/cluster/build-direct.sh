#!/usr/bin/env bash
# The field report's Dockerfile, verbatim (FROM registry.kube-system.svc.cluster.local:5000/ones/plugin-host-node:v6.33.1,
# USER root, WORKDIR /opt/app, COPY hello.txt /opt/app/hello.txt), built by `imgbuild build` on the direct engine
# from the host and pushed where the report's Kaniko Job pushed: registry.kube-system.svc.cluster.local:5000 (TLS,
# the testbed CA given with --ca-file). The host does not resolve that cluster name, so the build runs in a private
# mount namespace whose /etc/hosts maps it to the registry's node address (nothing outside changes). Then, as the
# report verifies, a pod pulls the image through localhost:5000 by the printed digest and must print the two lines
# and OK; its imageID must be that digest.
# Usage: test/cluster/build-direct.sh   (exit 0 = pass; root, for unshare). Env: KUBECONFIG, KUBECTL override the
# testbed's; IMGBUILD_CLI (default dist/imgbuild.mjs); IMGBUILD_TESTBED_DIR (default /var/lib/imgbuild-testbed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
KUBECTL=${KUBECTL:-kubectl}
IMGBUILD_CLI=${IMGBUILD_CLI:-$ROOT/dist/imgbuild.mjs}
CA=${IMGBUILD_TESTBED_DIR:-/var/lib/imgbuild-testbed}/pki/ca.crt
REGISTRY_HOST=registry.kube-system.svc.cluster.local
REGISTRY_NODE_IP=10.88.0.1
k() { "$KUBECTL" "$@"; }
NS=imgbuild
POD=verify-imgbuild-build
TARGET=$REGISTRY_HOST:5000/new-imgbuild-build:latest
created_ns=0
work=$(mktemp -d)
fail() { echo "FAIL: $*" >&2; diag; exit 1; }
diag() {
  echo "----- diagnostics -----" >&2
  k -n "$NS" get pods,events -o wide >&2 2>&1 || true
  k -n "$NS" describe pod "$POD" >&2 2>&1 | tail -n 60 || true
  k -n "$NS" logs "$POD" >&2 2>&1 || true
}
cleanup() {
  k -n "$NS" delete pod "$POD" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  ((created_ns)) && { k delete ns "$NS" --ignore-not-found --wait=true --timeout=90s >/dev/null 2>&1 || true; }
  rm -rf "$work"
}
trap cleanup EXIT
[[ -f $IMGBUILD_CLI ]] || { echo "FAIL: $IMGBUILD_CLI missing: run 'npm run build'" >&2; exit 1; }
[[ -f $CA ]] || { echo "FAIL: the testbed CA $CA is missing: is the testbed up?" >&2; exit 1; }
t0=$SECONDS

echo "# the report's build context, verbatim"
mkdir -p "$work/context"
cat >"$work/context/Dockerfile" <<'EOF'
FROM registry.kube-system.svc.cluster.local:5000/ones/plugin-host-node:v6.33.1
USER root
WORKDIR /opt/app
COPY hello.txt /opt/app/hello.txt
EOF
printf 'built-by: kaniko\nmessage: hello from kaniko build\n' >"$work/context/hello.txt"
{ cat /etc/hosts; echo "$REGISTRY_NODE_IP $REGISTRY_HOST"; } >"$work/hosts"

echo "# imgbuild build --engine direct (the cluster's registry name resolved in a private mount namespace)"
ref=$(unshare --mount sh -c 'mount --bind "$1" /etc/hosts && shift && exec "$@"' _ "$work/hosts" \
  node "$IMGBUILD_CLI" build "$work/context" --engine direct --ca-file "$CA" --to "$TARGET" 2>"$work/build.err") ||
  { cat "$work/build.err" >&2; fail "imgbuild build failed"; }
cat "$work/build.err" >&2
echo "$ref"
[[ $ref =~ ^$REGISTRY_HOST:5000/new-imgbuild-build@(sha256:[0-9a-f]{64})$ ]] || fail "imgbuild build printed '$ref', not REPO@sha256:<digest>"
digest=${BASH_REMATCH[1]}
grep -q 'engine: direct' "$work/build.err" || fail "the build did not say it ran on the direct engine"

echo "# a pod pulls localhost:5000/new-imgbuild-build@$digest, as the report verifies"
k get ns "$NS" >/dev/null 2>&1 || { k create ns "$NS" >/dev/null; created_ns=1; }
k -n "$NS" delete pod "$POD" --ignore-not-found --wait=true >/dev/null
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $POD}
spec:
  restartPolicy: Never
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: verify
    image: localhost:5000/new-imgbuild-build@$digest
    command: [sh, -c, 'cat /opt/app/hello.txt && echo OK']
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
YAML
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$POD" --timeout=2m >/dev/null || fail "$POD did not succeed"
out=$(k -n "$NS" logs "$POD")
echo "$out"
expected=$'built-by: kaniko\nmessage: hello from kaniko build\nOK'
[[ $out == "$expected" ]] || fail "$POD output differs from the expected three lines"
image_id=$(k -n "$NS" get pod "$POD" -o jsonpath='{.status.containerStatuses[0].imageID}')
[[ $image_id == *"$digest" ]] || fail "the kubelet ran image $image_id, not $digest"
echo "PASS imgbuild build, the report's Dockerfile on the direct engine ($((SECONDS - t0))s)"
