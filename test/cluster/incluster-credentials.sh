#!/usr/bin/env bash
# `add --in-cluster` against the testbed's password-protected endpoint (registry.kube-system.svc.cluster.local:5001,
# htpasswd), in a restricted namespace: refused without credentials, with imgbuild's own diagnosis from the pod;
# with them from the local docker config (a per-build Secret mounted as DOCKER_CONFIG), pushed, and never printed
# (--dry-run names the Secret only); or with --username/--password-stdin. Nothing left behind either way.
# Usage: test/cluster/incluster-credentials.sh   (exit 0 = pass).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
POD_SECURITY=restricted
. "$ROOT/test/cluster/lib/kaniko.sh"
. "$ROOT/test/cluster/lib/incluster.sh"
t0=$SECONDS
AUTH_REGISTRY=registry.kube-system.svc.cluster.local:5001
password=$(cat "${IMGBUILD_TESTBED_DIR:-/var/lib/imgbuild-testbed}/registry/auth-password")
auth=$(printf 'imgbuild:%s' "$password" | base64 -w0)
printf 'hello with credentials\n' >"$work/hello.txt"
mkdir -p "$work/nocreds" "$work/creds"
echo '{}' >"$work/nocreds/config.json"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$AUTH_REGISTRY" "$auth" >"$work/creds/config.json"
auth_add() {
  imgbuild add --in-cluster -n "$NS" --ca-file "$TESTBED_CA" --from "$AUTH_REGISTRY/ones/plugin-host-node:v6.33.1" \
    --add "$work/hello.txt:/opt/app/hello.txt" --to "$AUTH_REGISTRY/incluster-credentials:latest" "$@"
}
no_secret_material() { # FILE...
  if grep -qF -e "$password" -e "$auth" "$@"; then fail "credential material in $*"; fi
}

echo "# without credentials: refused, and the pod's imgbuild says why"
rc=0; DOCKER_CONFIG=$work/nocreds auth_add >"$work/out" 2>"$work/err" || rc=$?
((rc != 0)) || fail "a build against $AUTH_REGISTRY succeeded without credentials"
grep -Eiq '^error: .*(401|unauthorized|authentication|credentials)' "$work/err" || { cat "$work/err" >&2; fail "no credentials diagnosis"; }
echo "ok refused: $(grep -E '^(error|hint):' "$work/err" | cut -c1-200 | tr '\n' ' ')"
assert_no_objects

echo "# --dry-run with credentials: the Secret is named, never printed"
DOCKER_CONFIG=$work/creds auth_add --dry-run >"$work/dry.yaml"
grep -q '^# Secret imgbuild-.*-credentials (kubernetes.io/dockerconfigjson)' "$work/dry.yaml" || fail "--dry-run does not mention the Secret"
no_secret_material "$work/dry.yaml"

echo "# credentials from the local docker config"
DOCKER_CONFIG=$work/creds auth_add -v >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "the build with credentials failed"; }
ref=$(cat "$work/out")
[[ $ref =~ ^$AUTH_REGISTRY/incluster-credentials@sha256:[0-9a-f]{64}$ ]] || fail "unexpected result: $ref"
no_secret_material "$work/out" "$work/err"
served=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://localhost:5000/incluster-credentials:latest)
[[ $served == "${ref#*@}" ]] || fail "the tag serves $served, imgbuild printed ${ref#*@}"
assert_no_objects
echo "ok pushed $ref"

echo "# --username with --password-stdin, no docker config"
printf '%s' "$password" | DOCKER_CONFIG=$work/nocreds auth_add --username imgbuild --password-stdin >"$work/out" 2>"$work/err" ||
  { cat "$work/err" >&2; fail "the build with --password-stdin failed"; }
no_secret_material "$work/out" "$work/err"
assert_no_objects
echo "ok --password-stdin"
echo "PASS in-cluster credentials ($((SECONDS - t0))s)"
