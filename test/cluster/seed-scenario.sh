#!/usr/bin/env bash
# The field report's scenario, end to end, against the running testbed (testbed/testbed up):
# ConfigMap + Kaniko Job (testbed/seed/*.yaml) -> Job completes, log has "Pushed ...@sha256:",
# then the verification pod pulls localhost:5000/new-kaniko-image:latest, prints hello.txt + OK, and ran
# exactly the digest of the Job's Pushed line (its imageID).
# Usage: test/cluster/seed-scenario.sh   (exit 0 = pass). Env: KUBECONFIG, KUBECTL override the testbed's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
KUBECTL=${KUBECTL:-kubectl}
k() { "$KUBECTL" "$@"; }
SEED=$ROOT/testbed/seed
fail() { echo "FAIL: $*" >&2; diag; exit 1; }
diag() {
  echo "----- diagnostics -----" >&2
  k -n imgbuild get all,events -o wide >&2 2>&1 || true
  k -n imgbuild describe pods >&2 2>&1 | tail -n 80 || true
  k -n imgbuild logs job/kaniko-addfile -c prepare-context >&2 2>&1 || true
  k -n imgbuild logs job/kaniko-addfile -c executor >&2 2>&1 | tail -n 60 || true
  k -n imgbuild logs verify-image >&2 2>&1 || true
}
cleanup() {
  k -n imgbuild delete job kaniko-addfile --ignore-not-found --wait=true >/dev/null 2>&1 || true
  k -n imgbuild delete configmap kaniko-context --ignore-not-found >/dev/null 2>&1 || true
  k -n imgbuild delete pod verify-image --ignore-not-found >/dev/null 2>&1 || true
}
t0=$SECONDS
echo "# seed scenario: namespace, ConfigMap, Job"
cleanup
k get ns imgbuild >/dev/null 2>&1 || k create ns imgbuild
k apply -f "$SEED/kaniko-context.yaml"
k apply -f "$SEED/kaniko-job.yaml"
echo "# waiting for job/kaniko-addfile to complete"
if ! k -n imgbuild wait --for=condition=complete job/kaniko-addfile --timeout=5m; then
  fail "job/kaniko-addfile did not complete"
fi
logs=$(k -n imgbuild logs job/kaniko-addfile)
echo "$logs" | grep -E 'Pushing image to|Pushed' || true
echo "$logs" | grep -q 'Pushing image to registry.kube-system.svc.cluster.local:5000/new-kaniko-image:latest' ||
  fail "job log lacks 'Pushing image to registry.kube-system.svc.cluster.local:5000/new-kaniko-image:latest'"
pushed=$(echo "$logs" | grep -oE 'Pushed .*@sha256:[0-9a-f]{64}' | grep -oE 'sha256:[0-9a-f]{64}' | tail -n 1) ||
  fail "job log lacks 'Pushed ...@sha256:<digest>'"
echo "# verification pod through localhost:5000"
k -n imgbuild run verify-image --image=localhost:5000/new-kaniko-image:latest \
  --restart=Never --command -- sh -c 'cat /opt/app/hello.txt && echo OK'
if ! k -n imgbuild wait --for=jsonpath='{.status.phase}'=Succeeded pod/verify-image --timeout=2m; then
  fail "verify-image did not succeed"
fi
out=$(k -n imgbuild logs verify-image)
echo "$out"
expected=$'built-by: kaniko\nmessage: hello from kaniko build\nOK'
[[ $out == "$expected" ]] || fail "verify-image output differs from the expected three lines"
# The pod must have run the image the Job pushed, not an older one under the same tag.
image_id=$(k -n imgbuild get pod verify-image -o jsonpath='{.status.containerStatuses[0].imageID}')
echo "pushed $pushed; verify-image ran $image_id"
[[ $image_id == *"@$pushed" ]] || fail "verify-image ran $image_id, not the pushed $pushed"
cleanup
echo "PASS seed scenario ($((SECONDS - t0))s)"
