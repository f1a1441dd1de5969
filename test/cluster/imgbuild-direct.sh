#!/usr/bin/env bash
# The seed job done the imgbuild way, proved by the cluster (testbed/testbed up first):
# imgbuild adds hello.txt to localhost:5000/ones/plugin-host-node:v6.33.1 from the host (USER root,
# WORKDIR /opt/app), `imgbuild verify` reads the file back from the registry, then a pod pulls the image
# by the digest imgbuild printed and prints the file + OK, and a second container shows USER and WORKDIR.
# Usage: test/cluster/imgbuild-direct.sh   (exit 0 = pass). Env: KUBECONFIG, KUBECTL override the testbed's;
# IMGBUILD_CLI (default dist/imgbuild.mjs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
KUBECTL=${KUBECTL:-kubectl}
IMGBUILD_CLI=${IMGBUILD_CLI:-$ROOT/dist/imgbuild.mjs}
k() { "$KUBECTL" "$@"; }
imgbuild() { node "$IMGBUILD_CLI" "$@"; }
NS=imgbuild
POD=verify-imgbuild-image
BASE=localhost:5000/ones/plugin-host-node:v6.33.1
TARGET=localhost:5000/new-imgbuild-image:latest
created_ns=0
work=$(mktemp -d)
fail() { echo "FAIL: $*" >&2; diag; exit 1; }
diag() {
  echo "----- diagnostics -----" >&2
  k -n "$NS" get pods,events -o wide >&2 2>&1 || true
  k -n "$NS" describe pod "$POD" >&2 2>&1 | tail -n 60 || true
  k -n "$NS" logs "$POD" --all-containers >&2 2>&1 || true
}
cleanup() {
  k -n "$NS" delete pod "$POD" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  # the namespace is shared with seed-scenario.sh: delete it only if this test made it
  ((created_ns)) && { k delete ns "$NS" --ignore-not-found --wait=true --timeout=90s >/dev/null 2>&1 || true; }
  rm -rf "$work"
}
trap cleanup EXIT
[[ -f $IMGBUILD_CLI ]] || { echo "FAIL: $IMGBUILD_CLI missing: run 'npm run build'" >&2; exit 1; }
t0=$SECONDS

echo "# imgbuild add from the host"
printf 'built-by: imgbuild\nmessage: hello from imgbuild build\n' >"$work/hello.txt"
ref=$(imgbuild add --from "$BASE" --add "$work/hello.txt:/opt/app/hello.txt" --user root --workdir /opt/app --to "$TARGET") ||
  fail "imgbuild add failed"
echo "$ref"
[[ $ref =~ ^localhost:5000/new-imgbuild-image@sha256:[0-9a-f]{64}$ ]] || fail "imgbuild add printed '$ref', not REPO@sha256:<digest>"

echo "# imgbuild verify reads the file back from the registry"
imgbuild verify "$ref" --file /opt/app/hello.txt --expect-file "$work/hello.txt" >/dev/null ||
  fail "imgbuild verify: /opt/app/hello.txt in $ref differs from hello.txt"
# the tag points at the same manifest, which keeps the base's Docker v2 schema 2 format
tagged=$(skopeo inspect --raw --tls-verify=false "docker://$TARGET")
[[ sha256:$(printf '%s' "$tagged" | sha256sum | cut -d' ' -f1) == "${ref#*@}" ]] || fail "$TARGET does not point at ${ref#*@}"
jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"' <<<"$tagged" >/dev/null ||
  fail "manifest media type is $(jq -r .mediaType <<<"$tagged"), expected the base's Docker v2 schema 2"

echo "# a pod pulls $ref"
k get ns "$NS" >/dev/null 2>&1 || { k create ns "$NS" >/dev/null; created_ns=1; }
k -n "$NS" delete pod "$POD" --ignore-not-found --wait=true >/dev/null
# as restricted as an image whose USER is root allows: no privilege escalation, no capabilities, seccomp
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $POD}
spec:
  restartPolicy: Never
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: verify
    image: $ref
    command: [sh, -c, 'cat /opt/app/hello.txt && echo OK']
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
  - name: user-workdir
    image: $ref
    command: [sh, -c, 'echo "uid=\$(id -u) pwd=\$(pwd)"']
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
YAML
k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$POD" --timeout=2m >/dev/null ||
  fail "$POD did not succeed"
out=$(k -n "$NS" logs "$POD" -c verify)
echo "$out"
expected=$'built-by: imgbuild\nmessage: hello from imgbuild build\nOK'
[[ $out == "$expected" ]] || fail "$POD output differs from the expected three lines"
uw=$(k -n "$NS" logs "$POD" -c user-workdir)
[[ $uw == "uid=0 pwd=/opt/app" ]] || fail "USER/WORKDIR in the pod: '$uw', expected 'uid=0 pwd=/opt/app'"
echo "$uw"
image_id=$(k -n "$NS" get pod "$POD" -o jsonpath='{.status.containerStatuses[?(@.name=="verify")].imageID}')
[[ $image_id == *"${ref#*@}" ]] || fail "the kubelet ran image $image_id, not ${ref#*@}"
echo "PASS imgbuild direct ($((SECONDS - t0))s)"
