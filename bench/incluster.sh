#!/usr/bin/env bash
# Benchmark on the testbed (testbed/testbed up first): the field report's job (add hello.txt at
# /opt/app/hello.txt, WORKDIR /opt/app, USER root onto ones/plugin-host-node:v6.33.1) three ways,
# alternated in one invocation:
#   in-cluster  imgbuild add --in-cluster (the direct engine as a restricted pod, bundle in a ConfigMap,
#               on the testbed's Node image), pushing to the report's cluster-internal registry
#   kaniko      imgbuild add --engine kaniko, same registry
#   host        imgbuild add from this machine, to localhost:5000 (the same registry storage)
# For the two cluster builds, "pod start to digest" is from the pod's status.startTime (the kubelet took
# it) to the builder's exit with the digest in its termination message; for the host run it is the
# command's wall time (process start to digest printed). Wall time of each command is shown too.
# Prints a markdown table of medians on stdout; progress on stderr. BENCH_RUNS=5 by default.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
testbed_env=$("$ROOT/testbed/testbed" env) || { echo "bench: the testbed is not up (sudo testbed/testbed up)" >&2; exit 1; }
eval "$testbed_env"
RUNS=${BENCH_RUNS:-5}
NS=imgbuild-bench-incluster   # Pod Security baseline: Kaniko runs here too (in-cluster would pass restricted)
REG=registry.kube-system.svc.cluster.local:5000
CA=${IMGBUILD_TESTBED_DIR:-/var/lib/imgbuild-testbed}/pki/ca.crt
export IMGBUILD_KANIKO_IMAGE=localhost:5000/kaniko-project/executor:v1.24.0-debug
export IMGBUILD_INIT_IMAGE=localhost:5000/busybox:1.35
export IMGBUILD_NODE_IMAGE=localhost:5000/node:22-imgbuild
work=$(mktemp -d)
cp "$ROOT/dist/imgbuild.mjs" "$work/imgbuild.mjs"
trap 'kubectl delete ns "$NS" --wait=false >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
kubectl get ns "$NS" >/dev/null 2>&1 || kubectl create ns "$NS" >/dev/null
kubectl label --overwrite ns "$NS" pod-security.kubernetes.io/enforce=baseline >/dev/null
printf 'built-by: imgbuild\nmessage: hello\n' >"$work/hello.txt"
now() { date +%s.%N; }
seed() { node "$work/imgbuild.mjs" add -q -o json --from "$1/ones/plugin-host-node:v6.33.1" --add "$work/hello.txt:/opt/app/hello.txt" --user root --workdir /opt/app "${@:2}"; }
field() { node -e "const r=JSON.parse(require('fs').readFileSync(0,'utf8')); console.log(r['$1'] ?? 'NaN')"; }
run() { # NAME -> "wall pod-start-to-digest"
  local t0 t1 json
  t0=$(now)
  case $1 in
    in-cluster) json=$(seed "$REG" --in-cluster -n "$NS" --ca-file "$CA" --to "$REG/bench-incluster:latest") ;;
    kaniko) json=$(seed "$REG" --engine kaniko -n "$NS" --insecure --to "$REG/bench-kaniko:latest") ;;
    host) json=$(seed localhost:5000 --to localhost:5000/bench-host:latest) ;;
  esac
  t1=$(now)
  local wall; wall=$(echo "$t1 - $t0" | bc)
  if [[ $1 == host ]]; then echo "$wall $wall"; else echo "$wall $(echo "$json" | field podSeconds)"; fi
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ways=(in-cluster kaniko host)
for way in "${ways[@]}"; do : >"$work/$way"; done
for i in $(seq 1 "$RUNS"); do
  for way in "${ways[@]}"; do echo "bench: run $i/$RUNS $way" >&2; run "$way" >>"$work/$way"; done
done
printf '| the report'"'"'s job, median of %s | pod start to digest s | wall s |\n|---|---|---|\n' "$RUNS"
declare -A pod wall
for way in "${ways[@]}"; do
  pod[$way]=$(cut -d' ' -f2 "$work/$way" | median); wall[$way]=$(cut -d' ' -f1 "$work/$way" | median)
done
printf '| add --in-cluster (direct engine, restricted pod) | %.2f | %.2f |\n' "${pod[in-cluster]}" "${wall[in-cluster]}"
printf '| add --engine kaniko | %.2f | %.2f |\n' "${pod[kaniko]}" "${wall[kaniko]}"
printf '| add from the host (direct engine; process start to digest) | %.2f | %.2f |\n' "${pod[host]}" "${wall[host]}"
printf '\nin-cluster / kaniko, pod start to digest: %.2f; wall: %.2f\n' "$(echo "${pod[in-cluster]} / ${pod[kaniko]}" | bc -l)" "$(echo "${wall[in-cluster]} / ${wall[kaniko]}" | bc -l)"
