#!/usr/bin/env bash
# The Kaniko engine's failures on the testbed, each ended by a diagnosis (cause + fix), non-zero,
# without waiting for the deadline, and with no imgbuild object left; --dry-run accepted by the server.
# Usage: test/cluster/kaniko-failures.sh   (exit 0 = pass).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
. "$ROOT/test/cluster/lib/kaniko.sh"
t0=$SECONDS
printf 'hello\n' >"$work/hello.txt"
BASE=$CLUSTER_REGISTRY/ones/plugin-host-node:v6.33.1
seed_add() { imgbuild add --engine kaniko -n "$NS" --insecure --from "$BASE" --add "$work/hello.txt:/opt/app/hello.txt" --to "$CLUSTER_REGISTRY/kaniko-failures:latest" "$@"; }
# expect_failure NAME PATTERN CMD...: CMD must fail, and its stderr must match PATTERN (extended regex).
expect_failure() {
  local name=$1 pattern=$2 started=$SECONDS rc=0; shift 2
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  ((rc != 0)) || { cat "$work/err" >&2; fail "$name: succeeded, expected a failure"; }
  grep -Eq "$pattern" "$work/err" || { cat "$work/err" >&2; fail "$name: stderr lacks /$pattern/"; }
  echo "ok $name: exit $rc after $((SECONDS - started))s: $(grep -E '^(error|hint):' "$work/err" | tr '\n' ' ')"
  assert_no_objects
}

echo "# --dry-run prints what would be applied; the API server accepts it (server-side dry run)"
seed_add --dry-run >"$work/dry.yaml"
grep -q '^kind: Job' "$work/dry.yaml" || fail "--dry-run printed no Job"
k apply --dry-run=server -n "$NS" -f "$work/dry.yaml" || fail "the server refused the --dry-run output"
assert_no_objects

echo "# a Kaniko image the node cannot pull (diagnosed before any deadline: --timeout is 10 minutes)"
bad_kaniko_image() { IMGBUILD_KANIKO_IMAGE=localhost:5000/no-such/kaniko:0 seed_add --timeout 10m; }
expect_failure wrong-kaniko-image 'cannot pull localhost:5000/no-such/kaniko:0' bad_kaniko_image
grep -q -- '--kaniko-image' "$work/err" || fail "wrong-kaniko-image: the hint does not name --kaniko-image"

echo "# a base image that does not exist"
expect_failure missing-base 'base image does not exist' \
  imgbuild add --engine kaniko -n "$NS" --insecure --from "$CLUSTER_REGISTRY/no/such-base:1" --add "$work/hello.txt:/hello.txt" --to "$CLUSTER_REGISTRY/kaniko-failures:latest"

echo "# TLS without --insecure: Kaniko does not trust the testbed CA"
expect_failure untrusted-tls 'does not trust.*certificate' \
  imgbuild add --engine kaniko -n "$NS" --from "$BASE" --add "$work/hello.txt:/hello.txt" --to "$CLUSTER_REGISTRY/kaniko-failures:latest"
grep -q -- '--ca-file' "$work/err" || fail "untrusted-tls: the hint does not name --ca-file"

echo "# --registry-secret naming a Secret that does not exist"
expect_failure missing-registry-secret 'secret "no-such-secret" does not exist' seed_add --registry-secret no-such-secret --timeout 10m
grep -q -- '--registry-secret' "$work/err" || fail "missing-registry-secret: the hint does not name --registry-secret"

echo "# more CPU than any node has: Unschedulable"
expect_failure unschedulable 'no node can run the build pod: .*Insufficient cpu' seed_add --cpu 64 --timeout 10m
grep -q -- '--cpu' "$work/err" || fail "unschedulable: the hint does not name --cpu/--memory"

echo "# a memory limit Kaniko cannot live in: OOMKilled"
# (8Mi: the runtime kills Kaniko either with reason OOMKilled or with a bare exit 137, both diagnosed; at 12Mi it sometimes succeeds)
expect_failure oom-killed 'ran out of memory' seed_add --memory 8Mi --timeout 10m
grep -q -- '--memory' "$work/err" || fail "oom-killed: the hint does not name --memory"

echo "# a ServiceAccount without the Role: refused by RBAC, and the message names the verb and the resource"
k -n "$NS" create sa imgbuild-nobody >/dev/null
kubeconfig_for imgbuild-nobody "$work/nobody.kubeconfig"
expect_failure rbac-forbidden 'does not allow you to create (configmaps|jobs) in namespace .*Forbidden' \
  env KUBECONFIG="$work/nobody.kubeconfig" node "$IMGBUILD_CLI" add --engine kaniko --insecure --from "$BASE" --add "$work/hello.txt:/hello.txt" --to "$CLUSTER_REGISTRY/kaniko-failures:latest"
grep -Eq 'hint: .*grants "create" on "(configmaps|jobs)"' "$work/err" || fail "rbac-forbidden: the hint does not name the verb and resource"

echo "# a namespace that enforces Pod Security 'restricted'"
RESTRICTED=$NS-restricted
k wait --for=delete "ns/$RESTRICTED" --timeout=180s >/dev/null 2>&1 || true
k create ns "$RESTRICTED" >/dev/null
k label --overwrite ns "$RESTRICTED" pod-security.kubernetes.io/enforce=restricted >/dev/null
grant_builder "$RESTRICTED"
trap 'k delete ns "$RESTRICTED" --ignore-not-found --wait=false >/dev/null 2>&1 || true; kaniko_cleanup' EXIT
expect_failure restricted-namespace 'Pod Security admission \(restricted\) refused' \
  imgbuild add --engine kaniko -n "$RESTRICTED" --insecure --from "$BASE" --add "$work/hello.txt:/hello.txt" --to "$CLUSTER_REGISTRY/kaniko-failures:latest"
grep -q 'direct engine' "$work/err" || fail "restricted-namespace: the hint does not name the direct engine"
left=$(k -n "$RESTRICTED" get jobs,pods,configmaps,secrets -l app.kubernetes.io/managed-by=imgbuild -o name)
[[ -z $left ]] || fail "objects left in $RESTRICTED: $left"

echo "# Ctrl-C or SIGTERM in the middle of a build: objects deleted"
mkdir -p "$work/slow"
printf 'FROM %s\nRUN sleep 60\n' "$CLUSTER_REGISTRY/busybox:1.35" >"$work/slow/Dockerfile"
# One process, which the signals below reach directly.
slow_build() { KUBECONFIG=$work/builder.kubeconfig exec node "$IMGBUILD_CLI" build "$work/slow" --engine kaniko -n "$NS" --insecure --to "$CLUSTER_REGISTRY/kaniko-slow:latest"; }
wait_for_kaniko_running() {
  for _ in $(seq 1 240); do
    [[ $(k -n "$NS" get pods -l app.kubernetes.io/managed-by=imgbuild -o jsonpath='{.items[*].status.containerStatuses[?(@.name=="kaniko")].state.running}' 2>/dev/null) == *startedAt* ]] && return 0
    sleep 0.5
  done
  fail "the Kaniko container never started"
}
# SIGINT (Ctrl-C) and SIGTERM (a CI runner stopping the job) end the same way; exit 128 + the signal number.
for signal in INT:130 TERM:143; do
  (slow_build) >"$work/out" 2>"$work/err" &
  pid=$!
  wait_for_kaniko_running
  [[ -n $(imgbuild_objects) ]] || fail "positive control: no objects while the build runs"
  kill -"${signal%:*}" "$pid"
  rc=0; wait "$pid" || rc=$?
  [[ $rc == "${signal#*:}" ]] || { cat "$work/err" >&2; fail "SIG${signal%:*}: exit $rc, expected ${signal#*:}"; }
  grep -q 'interrupted' "$work/err" || fail "SIG${signal%:*}: no 'interrupted' message"
  assert_no_objects
  echo "ok SIG${signal%:*}: exit $rc, nothing left"
done

echo "# --timeout: the Job's deadline ends a build that runs too long, and says which flag"
rc=0; imgbuild build "$work/slow" --engine kaniko -n "$NS" --insecure --timeout 15s --to "$CLUSTER_REGISTRY/kaniko-slow:latest" >"$work/out" 2>"$work/err" || rc=$?
((rc != 0)) || fail "--timeout 15s: a 60 s RUN succeeded"
grep -q 'did not finish within 15 seconds (DeadlineExceeded)' "$work/err" && grep -q -- '--timeout' "$work/err" || { tail -n 5 "$work/err" >&2; fail "--timeout: no DeadlineExceeded diagnosis"; }
echo "ok --timeout: $(grep -E '^error:' "$work/err")"
assert_no_objects

echo "# kill -9 leaves objects; imgbuild clean removes them"
(slow_build) >"$work/out" 2>"$work/err" &
pid=$!
wait_for_kaniko_running
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[[ -n $(imgbuild_objects) ]] || fail "kill -9: positive control: the killed client left nothing to clean"
imgbuild clean -n "$NS" --older-than 1s >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "imgbuild clean failed"; }
grep -q '^deleted job/' "$work/out" || fail "clean did not report the Job"
assert_no_objects
echo "ok kill -9 + clean"

echo "PASS kaniko failures ($((SECONDS - t0))s)"
