#!/usr/bin/env bash
# Credentials for the Kaniko engine against the testbed's password-protected endpoint
# (registry.kube-system.svc.cluster.local:5001, htpasswd): refused without them (diagnosed);
# taken from the local docker config into a per-build Secret (base and destination both need them),
# never printed; or an existing Secret with --registry-secret. Nothing left behind either way.
# Usage: test/cluster/kaniko-credentials.sh   (exit 0 = pass).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
. "$ROOT/test/cluster/lib/kaniko.sh"
t0=$SECONDS
AUTH_REGISTRY=registry.kube-system.svc.cluster.local:5001
password=$(cat "${IMGBUILD_TESTBED_DIR:-/var/lib/imgbuild-testbed}/registry/auth-password")
auth=$(printf 'imgbuild:%s' "$password" | base64 -w0)
printf 'hello with credentials\n' >"$work/hello.txt"
mkdir -p "$work/nocreds" "$work/creds"
echo '{}' >"$work/nocreds/config.json"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$AUTH_REGISTRY" "$auth" >"$work/creds/config.json"
auth_add() {
  imgbuild add --engine kaniko -n "$NS" --insecure --from "$AUTH_REGISTRY/ones/plugin-host-node:v6.33.1" \
    --add "$work/hello.txt:/opt/app/hello.txt" --to "$AUTH_REGISTRY/kaniko-credentials:latest" "$@"
}
no_secret_material() { # FILE...
  if grep -qF -e "$password" -e "$auth" "$@"; then fail "credential material in $*"; fi
}

echo "# without credentials: refused, and said so"
rc=0; DOCKER_CONFIG=$work/nocreds auth_add >"$work/out" 2>"$work/err" || rc=$?
((rc != 0)) || fail "a build against $AUTH_REGISTRY succeeded without credentials"
grep -q "refused Kaniko's credentials" "$work/err" || { cat "$work/err" >&2; fail "no credentials diagnosis"; }
echo "ok refused: $(grep -E '^(error|hint):' "$work/err" | tr '\n' ' ')"
assert_no_objects

echo "# --dry-run with credentials: the Secret is named, never printed"
DOCKER_CONFIG=$work/creds auth_add --dry-run >"$work/dry.yaml"
grep -q '^# Secret imgbuild-.*-credentials (kubernetes.io/dockerconfigjson)' "$work/dry.yaml" || fail "--dry-run does not mention the Secret"
no_secret_material "$work/dry.yaml"

echo "# credentials from the local docker config"
DOCKER_CONFIG=$work/creds auth_add -v >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "the build with credentials failed"; }
ref=$(cat "$work/out")
[[ $ref =~ ^$AUTH_REGISTRY/kaniko-credentials@sha256:[0-9a-f]{64}$ ]] || fail "unexpected result: $ref"
no_secret_material "$work/out" "$work/err"
served=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://localhost:5000/kaniko-credentials:latest)
[[ $served == "${ref#*@}" ]] || fail "the tag serves $served, imgbuild printed ${ref#*@}"
assert_no_objects
echo "ok pushed $ref"

echo "# --registry-secret: an existing Secret, no local credentials"
k -n "$NS" create secret docker-registry kaniko-test-creds --docker-server="$AUTH_REGISTRY" --docker-username=imgbuild --docker-password="$password" >/dev/null
DOCKER_CONFIG=$work/nocreds auth_add --registry-secret kaniko-test-creds >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "the build with --registry-secret failed"; }
k -n "$NS" get secret kaniko-test-creds >/dev/null || fail "imgbuild deleted the user's Secret"
assert_no_objects
echo "ok --registry-secret"
echo "PASS kaniko credentials ($((SECONDS - t0))s)"
