#!/usr/bin/env bash
# Benchmark on the testbed (testbed/testbed up first): the field report's job done as one imgbuild
# command (add --engine kaniko --verify-command ... --pull-via localhost:5000) against the report's
# manual kubectl sequence (apply ConfigMap + Job, wait, logs, run the verification pod, wait, logs,
# delete), alternated in the same invocation. Both run the same Kaniko image on the same cluster.
#
# Besides the wall times it splits imgbuild's run, from its own debug trace (`-v`: each line carries
# the milliseconds since the command started), into the time it waited for the cluster (from the
# build's objects created to the Kaniko container seen terminated; from the verification pod created
# to its end seen) and the rest: imgbuild's own overhead (start-up, context and objects, log drain,
# digest, output check, cleanup, exit). Goal: under 1 s. Also "beyond the Kaniko container": wall
# time minus the Kaniko container's running time, for both (the API reports that time in whole seconds).
# Prints a markdown table of medians on stdout; progress on stderr. BENCH_RUNS=5 by default.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
testbed_env=$("$ROOT/testbed/testbed" env) || { echo "bench: the testbed is not up (sudo testbed/testbed up)" >&2; exit 1; }
eval "$testbed_env"
RUNS=${BENCH_RUNS:-5}
NS=imgbuild-bench
REG=registry.kube-system.svc.cluster.local:5000
KANIKO=localhost:5000/kaniko-project/executor:v1.24.0-debug
INIT=localhost:5000/busybox:1.35
work=$(mktemp -d)
cp "$ROOT/dist/imgbuild.mjs" "$work/imgbuild.mjs"
trap 'kubectl delete ns "$NS" --wait=false >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
kubectl wait --for=delete "ns/$NS" --timeout=180s >/dev/null 2>&1 || true
kubectl create ns "$NS" >/dev/null
printf 'built-by: kaniko\nmessage: hello from kaniko build\n' >"$work/hello.txt"
expected=$'built-by: kaniko\nmessage: hello from kaniko build\nOK'
now() { date +%s.%N; }
kaniko_seconds() { # POD -> seconds the kaniko/executor container ran
  kubectl -n "$NS" get pod "$1" -o json | node -e '
    const pod = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const t = pod.status.containerStatuses[0].state.terminated;
    console.log((Date.parse(t.finishedAt) - Date.parse(t.startedAt)) / 1000);'
}

manual() { # the report's sequence, with the testbed's images (testbed/seed/*.yaml, namespace swapped)
  local t0 t1 pod out
  sed "s/namespace: imgbuild/namespace: $NS/" "$ROOT/testbed/seed/kaniko-context.yaml" >"$work/cm.yaml"
  sed "s/namespace: imgbuild/namespace: $NS/" "$ROOT/testbed/seed/kaniko-job.yaml" >"$work/job.yaml"
  t0=$(now)
  kubectl apply -f "$work/cm.yaml" -f "$work/job.yaml" >/dev/null
  kubectl -n "$NS" wait --for=condition=complete job/kaniko-addfile --timeout=5m >/dev/null
  kubectl -n "$NS" logs job/kaniko-addfile -c executor >/dev/null
  kubectl -n "$NS" run verify-image --image=localhost:5000/new-kaniko-image:latest --restart=Never --command -- sh -c 'cat /opt/app/hello.txt && echo OK' >/dev/null
  kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/verify-image --timeout=2m >/dev/null
  out=$(kubectl -n "$NS" logs verify-image)
  pod=$(kubectl -n "$NS" get pods -l job-name=kaniko-addfile -o jsonpath='{.items[0].metadata.name}')
  local ran; ran=$(kaniko_seconds "$pod")
  kubectl -n "$NS" delete job kaniko-addfile --wait=true >/dev/null
  kubectl -n "$NS" delete configmap/kaniko-context pod/verify-image --wait=true >/dev/null
  t1=$(now)
  [[ $out == "$expected" ]] || { echo "bench: manual verification output differs" >&2; exit 1; }
  echo "$(echo "$t1 - $t0" | bc) $ran"
}

# Milliseconds of the first debug line matching a pattern, in imgbuild's -v trace.
at_ms() { grep -m1 -E "^debug \+[0-9]+ms: $1" "$work/trace" | sed -E 's/^debug \+([0-9]+)ms: .*/\1/'; }

one_command() { # -> wall kaniko_seconds waited_for_cluster own
  local t0 t1 json
  t0=$(now)
  json=$(IMGBUILD_KANIKO_IMAGE=$KANIKO IMGBUILD_INIT_IMAGE=$INIT node "$work/imgbuild.mjs" add --engine kaniko -n "$NS" --insecure -v -o json \
    --from "$REG/ones/plugin-host-node:v6.33.1" --add "$work/hello.txt:/opt/app/hello.txt" --user root --workdir /opt/app \
    --to "$REG/new-kaniko-image:latest" --verify-command 'cat /opt/app/hello.txt && echo OK' --expect-output "$expected" --pull-via localhost:5000 \
    2>"$work/trace")
  t1=$(now)
  local created built vcreated verified
  created=$(at_ms 'created configmap/') built=$(at_ms 'kaniko: terminated') vcreated=$(at_ms 'created pod/') verified=$(at_ms 'verify: terminated')
  [[ -n $created && -n $built && -n $vcreated && -n $verified ]] || { cat "$work/trace" >&2; echo "bench: no trace in imgbuild's -v output" >&2; exit 1; }
  local wall waited
  wall=$(echo "$t1 - $t0" | bc)
  waited=$(echo "($built - $created + $verified - $vcreated) / 1000" | bc -l)
  echo "$wall $(echo "$json" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).builderSeconds)') $waited $(echo "$wall - $waited" | bc -l)"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: >"$work/manual"; : >"$work/imgbuild"
for i in $(seq 1 "$RUNS"); do
  echo "bench: run $i/$RUNS manual" >&2; manual >>"$work/manual"
  echo "bench: run $i/$RUNS imgbuild" >&2; one_command >>"$work/imgbuild"
done
column() { cut -d' ' -f"$1" "$2" | median; }
m_wall=$(column 1 "$work/manual"); m_rest=$(awk '{print $1-$2}' "$work/manual" | median)
i_wall=$(column 1 "$work/imgbuild"); i_rest=$(awk '{print $1-$2}' "$work/imgbuild" | median)
i_waited=$(column 3 "$work/imgbuild"); i_own=$(column 4 "$work/imgbuild")
printf '| seed scenario, median of %s | wall s | beyond the Kaniko container s | waiting for the cluster s | own overhead s |\n|---|---|---|---|---|\n' "$RUNS"
printf '| manual kubectl sequence | %.2f | %.2f | | |\n' "$m_wall" "$m_rest"
printf '| imgbuild add --engine kaniko | %.2f | %.2f | %.2f | %.2f |\n' "$i_wall" "$i_rest" "$i_waited" "$i_own"
printf '\nimgbuild / manual wall: %.2f; imgbuild own overhead (wall minus waiting for the cluster): %.2f s (goal < 1 s)\n' \
  "$(echo "$i_wall / $m_wall" | bc -l)" "$i_own"
echo "per run (wall kaniko waited own): $(tr '\n' ';' <"$work/imgbuild")" >&2
