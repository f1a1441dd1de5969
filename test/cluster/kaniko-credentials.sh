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
CREDENTIALS_REPO=kaniko-credentials
. "$ROOT/test/cluster/lib/credentials.sh"
auth_add() {
  imgbuild add --engine kaniko --insecure -n "$NS" --from "$AUTH_REGISTRY/ones/plugin-host-node:v6.33.1" \
    --add "$work/hello.txt:/opt/app/hello.txt" --to "$AUTH_REGISTRY/$CREDENTIALS_REPO:latest" "$@"
}

echo "# without credentials: refused, and said so"
expect_refused_without_credentials "refused Kaniko's credentials"

expect_credentials_from_docker_config
expect_owner_collects_kept_objects

echo "# --registry-secret: an existing Secret, no local credentials"
k -n "$NS" create secret docker-registry kaniko-test-creds --docker-server="$AUTH_REGISTRY" --docker-username=imgbuild --docker-password="$password" >/dev/null
DOCKER_CONFIG=$work/nocreds auth_add --registry-secret kaniko-test-creds >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "the build with --registry-secret failed"; }
k -n "$NS" get secret kaniko-test-creds >/dev/null || fail "imgbuild deleted the user's Secret"
assert_no_objects
echo "ok --registry-secret"
echo "PASS kaniko credentials ($((SECONDS - t0))s)"
