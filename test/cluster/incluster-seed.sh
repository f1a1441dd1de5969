#!/usr/bin/env bash
# The field report's job with `imgbuild add --in-cluster`, in a namespace that enforces Pod Security
# "restricted", as a ServiceAccount bound to the minimal Role (docs/kaniko-role.yaml): the direct engine
# runs as the build pod (imgbuild's bundle in a ConfigMap, on the testbed's Node image), pushes to the
# report's cluster-internal TLS registry trusting the testbed CA (--ca-file), and a verification pod pulled
# through localhost:5000 prints the two lines and OK. Then: the digest equals a run from the host with the
# same SOURCE_DATE_EPOCH; the Kaniko engine is refused at admission there, and imgbuild names --in-cluster.
# Usage: test/cluster/incluster-seed.sh   (exit 0 = pass). Env: IMGBUILD_CLI (default dist/imgbuild.mjs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/incluster.sh"
t0=$SECONDS
printf 'built-by: imgbuild --in-cluster\nmessage: hello from a restricted pod\n' >"$work/hello.txt"
expected=$'built-by: imgbuild --in-cluster\nmessage: hello from a restricted pod\nOK'
[[ $(k get ns "$NS" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted ]] || fail "namespace $NS does not enforce restricted"

echo "# the report's job, one command, in a restricted namespace"
seed_job new-incluster-image '^\[imgbuild\] pushed ' --in-cluster --ca-file "$TESTBED_CA"

echo "# the same job from the host and in the cluster, SOURCE_DATE_EPOCH=0: the same digest"
export SOURCE_DATE_EPOCH=0
in_cluster=$(imgbuild add --in-cluster -n "$NS" -q --ca-file "$TESTBED_CA" --from "$CLUSTER_REGISTRY/ones/plugin-host-node:v6.33.1" \
  --add "$work/hello.txt:/opt/app/hello.txt" --user root --workdir /opt/app --to "$CLUSTER_REGISTRY/incluster-same:cluster") || fail "the in-cluster run failed"
from_host=$(node "$IMGBUILD_CLI" add -q --from localhost:5000/ones/plugin-host-node:v6.33.1 \
  --add "$work/hello.txt:/opt/app/hello.txt" --user root --workdir /opt/app --to localhost:5000/incluster-same:host) || fail "the host run failed"
unset SOURCE_DATE_EPOCH
[[ ${in_cluster#*@} == "${from_host#*@}" ]] || fail "in the cluster ${in_cluster#*@}, from the host ${from_host#*@}"
echo "ok both ${in_cluster#*@}"
assert_no_objects

echo "# a destination this machine reaches (the registry's node address): the tag is confirmed from here"
json=$(imgbuild add --in-cluster -n "$NS" -q -o json --ca-file "$TESTBED_CA" --from "$CLUSTER_REGISTRY/ones/plugin-host-node:v6.33.1" \
  --add "$work/hello.txt:/opt/app/hello.txt" --to 10.88.0.1:5000/incluster-confirmed:latest) || fail "the build to 10.88.0.1:5000 failed"
echo "$json" | node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const ok = r.confirmedInRegistry === true && r.inCluster === true && r.engine === "direct" && r.mediaType === "application/vnd.docker.distribution.manifest.v2+json" && r.platforms?.[0] === "linux/amd64" && /^10\.88\.0\.1:5000\/incluster-confirmed@sha256:[0-9a-f]{64}$/.test(r.reference);
  if (!ok) { console.error(JSON.stringify(r, null, 2)); process.exit(1); }' || fail "the result was not confirmed in the registry"
assert_no_objects

echo "# the Kaniko engine in the same namespace: refused at admission, and imgbuild names --in-cluster"
rc=0; imgbuild add --engine kaniko -n "$NS" --insecure --from "$CLUSTER_REGISTRY/ones/plugin-host-node:v6.33.1" \
  --add "$work/hello.txt:/opt/app/hello.txt" --to "$CLUSTER_REGISTRY/kaniko-refused:latest" >"$work/out" 2>"$work/err" || rc=$?
((rc != 0)) || fail "Kaniko was admitted in a restricted namespace"
grep -q 'Pod Security admission (restricted) refused the build pod' "$work/err" || { cat "$work/err" >&2; fail "no Pod Security diagnosis"; }
grep -q -- '--in-cluster' "$work/err" || { cat "$work/err" >&2; fail "the hint does not name --in-cluster"; }
echo "ok refused: $(grep -E '^(error|hint):' "$work/err" | cut -c1-200 | tr '\n' ' ')"
assert_no_objects
echo "PASS in-cluster seed ($((SECONDS - t0))s)"
