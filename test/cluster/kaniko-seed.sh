#!/usr/bin/env bash
# The field report's scenario as one imgbuild command (testbed/testbed up first): `imgbuild add --engine
# kaniko` renders the ConfigMap and the Kaniko Job, follows the build, takes the digest, runs the
# verification pod through localhost:5000, checks its output, and deletes everything it created.
# Checks: stdout is REPO@sha256:<digest>; the registry serves that digest for the tag (skopeo, through
# localhost:5000); the pod's output was checked (--expect-output) and printed; no imgbuild object is left.
# Usage: test/cluster/kaniko-seed.sh   (exit 0 = pass). Env: IMGBUILD_CLI (default dist/imgbuild.mjs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
. "$ROOT/test/cluster/lib/kaniko.sh"
t0=$SECONDS
echo "# seed scenario, one command: imgbuild add --engine kaniko"
printf 'built-by: kaniko\nmessage: hello from kaniko build\n' >"$work/hello.txt"
expected=$'built-by: kaniko\nmessage: hello from kaniko build\nOK'
seed_job new-kaniko-image '^\[kaniko\] .*Pushed' --engine kaniko --insecure

echo "# a destination this machine reaches too (the registry's node address): the tag is confirmed, media type and platform filled in"
json=$(imgbuild add --engine kaniko -n "$NS" --insecure -q -o json --from "$CLUSTER_REGISTRY/ones/plugin-host-node:v6.33.1" \
  --add "$work/hello.txt:/opt/app/hello.txt" --to 10.88.0.1:5000/kaniko-confirmed:latest) || fail "the build to 10.88.0.1:5000 failed"
echo "$json" | node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const ok = r.confirmedInRegistry === true && r.mediaType === "application/vnd.docker.distribution.manifest.v2+json" && r.platforms?.[0] === "linux/amd64" && /^10\.88\.0\.1:5000\/kaniko-confirmed@sha256:[0-9a-f]{64}$/.test(r.reference);
  if (!ok) { console.error(JSON.stringify(r, null, 2)); process.exit(1); }' || fail "the result was not confirmed in the registry"
assert_no_objects

echo "# imgbuild verify --in-cluster: the same check on its own, by digest"
out=$(imgbuild verify "$ref" --in-cluster -n "$NS" --command 'cat /opt/app/hello.txt && echo OK' --expect-output "$expected" --pull-via localhost:5000) ||
  fail "verify --in-cluster failed"
[[ $out == "$expected" ]] || fail "verify --in-cluster printed: $out"
rc=0; imgbuild verify "$ref" --in-cluster -n "$NS" --command 'echo something else' --expect-output "$expected" --pull-via localhost:5000 >/dev/null 2>"$work/err" || rc=$?
[[ $rc == 1 ]] && grep -q 'differs from --expect-output' "$work/err" || { cat "$work/err" >&2; fail "verify --in-cluster accepted the wrong output (exit $rc)"; }
assert_no_objects
echo "PASS kaniko seed scenario ($((SECONDS - t0))s)"
