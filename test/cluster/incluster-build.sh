#!/usr/bin/env bash
# `imgbuild build --in-cluster` in a namespace that enforces Pod Security "restricted", as the minimal
# Role: a RUN-less Dockerfile goes to the direct engine in the cluster (--engine auto); a context over
# 1 MiB is streamed over exec to imgbuild itself (no shell in the Node image) and the file is checked
# byte for byte in the pushed image; a Dockerfile with RUN goes to Kaniko, which restricted refuses;
# Ctrl-C in the middle of a build exits 130 and leaves no imgbuild object; --dry-run is accepted by
# the API server. Usage: test/cluster/incluster-build.sh   (exit 0 = pass).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/incluster.sh"
t0=$SECONDS
BASE=$CLUSTER_REGISTRY/ones/plugin-host-node:v6.33.1
mkdir -p "$work/ctx/sub"
printf 'hello from a Dockerfile\n' >"$work/ctx/hello.txt"
head -c 3145728 /dev/urandom >"$work/ctx/sub/big.bin"   # 3 MiB of incompressible bytes: no ConfigMap holds it
printf 'secret.txt\n' >"$work/ctx/.dockerignore"
printf 'must not travel\n' >"$work/ctx/secret.txt"
cat >"$work/ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
USER root
WORKDIR /opt/app
COPY hello.txt /opt/app/hello.txt
COPY sub/ /opt/app/data/
ENV GREETING=hello
DOCKERFILE

echo "# --dry-run: the objects, accepted by the API server (server-side dry run, restricted admission included)"
imgbuild build --in-cluster --dry-run -n "$NS" --ca-file "$TESTBED_CA" "$work/ctx" --to "$CLUSTER_REGISTRY/incluster-build:latest" >"$work/dry.yaml" 2>"$work/err" ||
  { cat "$work/err" >&2; fail "--dry-run failed"; }
grep -q '^kind: Job' "$work/dry.yaml" || fail "--dry-run printed no Job"
grep -q 'readOnlyRootFilesystem: true' "$work/dry.yaml" || fail "--dry-run: no read-only root"
if grep -q 'must not travel' "$work/dry.yaml"; then fail "--dry-run: a .dockerignore'd file is in the objects"; fi
k apply --dry-run=server -n "$NS" -f "$work/dry.yaml" >/dev/null || fail "the server refused the --dry-run output"
assert_no_objects

echo "# a RUN-less Dockerfile with a 3 MiB context: --engine auto picks the direct engine in the cluster, the context is streamed"
ref=$(imgbuild build --in-cluster -n "$NS" --ca-file "$TESTBED_CA" "$work/ctx" --to "$CLUSTER_REGISTRY/incluster-build:latest" 2>"$work/stderr") ||
  { cat "$work/stderr" >&2; fail "build --in-cluster failed"; }
cat "$work/stderr" >&2
[[ $ref =~ ^$CLUSTER_REGISTRY/incluster-build@sha256:[0-9a-f]{64}$ ]] || fail "stdout is not REPO@sha256:<digest>: $ref"
grep -q 'engine: direct in the cluster (--in-cluster) (no RUN in the stages built)' "$work/stderr" || fail "the engine choice was not logged"
grep -q 'streaming the context' "$work/stderr" || fail "the context was not streamed over exec"
local_ref=localhost:5000/incluster-build@${ref#*@}
node "$IMGBUILD_CLI" verify "$local_ref" --file /opt/app/data/big.bin --expect-file "$work/ctx/sub/big.bin" >/dev/null || fail "big.bin in the image differs"
node "$IMGBUILD_CLI" verify "$local_ref" --file /opt/app/hello.txt --expect-file "$work/ctx/hello.txt" >/dev/null || fail "hello.txt in the image differs"
rc=0; node "$IMGBUILD_CLI" verify "$local_ref" --file /opt/app/secret.txt >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "a .dockerignore'd file reached the image (verify exit $rc)"
config=$(skopeo inspect --tls-verify=false --config "docker://$local_ref")
echo "$config" | grep -q '"GREETING=hello"' || fail "ENV is not in the config"
echo "$config" | grep -q '"WorkingDir": "/opt/app"' || fail "WORKDIR is not in the config"
echo "ok $ref"
assert_no_objects

echo "# a Dockerfile with RUN and --in-cluster: auto sends it to Kaniko, which restricted refuses, said so"
mkdir -p "$work/run"
printf 'FROM %s\nRUN echo hi\n' "$BASE" >"$work/run/Dockerfile"
rc=0; imgbuild build --in-cluster -n "$NS" --insecure "$work/run" --to "$CLUSTER_REGISTRY/incluster-run:latest" >"$work/out" 2>"$work/err" || rc=$?
((rc != 0)) || fail "a RUN build succeeded in a restricted namespace"
grep -q 'engine: kaniko' "$work/err" && grep -q 'Pod Security admission (restricted)' "$work/err" || { cat "$work/err" >&2; fail "no Kaniko choice / Pod Security diagnosis"; }
echo "ok $(grep -E '^error:' "$work/err" | cut -c1-160)"
assert_no_objects

echo "# Ctrl-C while the pod runs: exit 130, every object deleted"
# node itself in the background, so $! is the process to interrupt
KUBECONFIG=$work/builder.kubeconfig node "$IMGBUILD_CLI" build --in-cluster -n "$NS" --ca-file "$TESTBED_CA" "$work/ctx" \
  --to "$CLUSTER_REGISTRY/incluster-interrupted:latest" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 300); do
  [[ -n $(imgbuild_objects | grep '^job') ]] && k -n "$NS" get pods -l app.kubernetes.io/managed-by=imgbuild -o name | grep -q . && break
  sleep 0.2
done
[[ -n $(imgbuild_objects) ]] || { kill "$pid" 2>/dev/null; fail "the build made no objects to interrupt"; }
sleep 1
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
cat "$work/err" >&2
[[ $rc == 130 ]] || fail "exit $rc after Ctrl-C, expected 130"
assert_no_objects
echo "ok interrupted, nothing left"
echo "PASS in-cluster build ($((SECONDS - t0))s)"
