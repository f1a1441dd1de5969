#!/usr/bin/env bash
# `add --in-cluster` against the testbed's password-protected endpoint (registry.kube-system.svc.cluster.local:5001,
# htpasswd), in a restricted namespace: refused without credentials, with imgbuild's own diagnosis from the pod;
# with them from the local docker config (a per-build Secret mounted as DOCKER_CONFIG), pushed, and never printed
# (--dry-run names the Secret only); or with --username/--password-stdin. Nothing left behind either way.
# Usage: test/cluster/incluster-credentials.sh   (exit 0 = pass).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/incluster.sh"
t0=$SECONDS
CREDENTIALS_REPO=incluster-credentials
. "$ROOT/test/cluster/lib/credentials.sh"
auth_add() {
  imgbuild add --in-cluster --ca-file "$TESTBED_CA" -n "$NS" --from "$AUTH_REGISTRY/ones/plugin-host-node:v6.33.1" \
    --add "$work/hello.txt:/opt/app/hello.txt" --to "$AUTH_REGISTRY/$CREDENTIALS_REPO:latest" "$@"
}

echo "# without credentials: refused, and the pod's imgbuild says why"
expect_refused_without_credentials '^error: .*(401|unauthorized|authentication|credentials)'

expect_credentials_from_docker_config
expect_owner_collects_kept_objects

echo "# --username with --password-stdin, no docker config"
printf '%s' "$password" | DOCKER_CONFIG=$work/nocreds auth_add --username imgbuild --password-stdin >"$work/out" 2>"$work/err" ||
  { cat "$work/err" >&2; fail "the build with --password-stdin failed"; }
no_secret_material "$work/out" "$work/err"
assert_no_objects
echo "ok --password-stdin"
echo "PASS in-cluster credentials ($((SECONDS - t0))s)"
