# Sourced by the Kaniko engine's cluster tests (after testbed-env.sh): the testbed's images for the
# engine, helpers, and a namespace of their own that is deleted at exit.
# shellcheck shell=bash
KUBECTL=${KUBECTL:-kubectl}
IMGBUILD_CLI=${IMGBUILD_CLI:-$ROOT/dist/imgbuild.mjs}
export IMGBUILD_KANIKO_IMAGE=${IMGBUILD_KANIKO_IMAGE:-localhost:5000/kaniko-project/executor:v1.24.0-debug}
export IMGBUILD_INIT_IMAGE=${IMGBUILD_INIT_IMAGE:-localhost:5000/busybox:1.35}
CLUSTER_REGISTRY=registry.kube-system.svc.cluster.local:5000
NS=${KANIKO_TEST_NS:-imgbuild-$(basename "$0" .sh)}   # one per script: a deleted namespace lingers while it terminates
k() { "$KUBECTL" "$@"; }
# imgbuild runs as a ServiceAccount bound to exactly docs/kaniko-role.yaml, not as cluster-admin.
imgbuild() { KUBECONFIG=$work/builder.kubeconfig node "$IMGBUILD_CLI" "$@"; }
work=$(mktemp -d)
diag() {
  echo "----- diagnostics -----" >&2
  k -n "$NS" get all,configmaps,secrets,events -o wide >&2 2>&1 || true
  k -n "$NS" describe pods >&2 2>&1 | tail -n 60 || true
}
fail() { echo "FAIL: $*" >&2; diag; exit 1; }
kaniko_cleanup() {
  k delete ns "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap kaniko_cleanup EXIT
[[ -f $IMGBUILD_CLI ]] || { echo "FAIL: $IMGBUILD_CLI missing: run 'npm run build'" >&2; exit 1; }
# Kaniko needs the Pod Security "baseline" level (root, a few capabilities); say so on the namespace.
# The --in-cluster tests set POD_SECURITY=restricted before sourcing this file.
POD_SECURITY=${POD_SECURITY:-baseline}
# a previous run's namespace may still be terminating: wait for it to go
k wait --for=delete "ns/$NS" --timeout=180s >/dev/null 2>&1 || true
k create ns "$NS" >/dev/null
k label --overwrite ns "$NS" "pod-security.kubernetes.io/enforce=$POD_SECURITY" >/dev/null
grant_builder() { # NS: the minimal Role and a binding for the builder ServiceAccount of $NS
  k -n "$1" apply -f "$ROOT/docs/kaniko-role.yaml" >/dev/null
  k -n "$1" create rolebinding imgbuild-kaniko --role imgbuild-kaniko --serviceaccount "$NS:imgbuild-builder" --dry-run=client -o yaml | k apply -f - >/dev/null
}
k -n "$NS" get sa imgbuild-builder >/dev/null 2>&1 || k -n "$NS" create sa imgbuild-builder >/dev/null
grant_builder "$NS"
k config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca.crt"
kubeconfig_for() { # SA FILE: a kubeconfig that acts as ServiceAccount SA of $NS
  cat >"$2" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: testbed, cluster: {server: "$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')", certificate-authority: "$work/ca.crt"}}]
users: [{name: $1, user: {token: "$(k -n "$NS" create token "$1" --duration 2h)"}}]
contexts: [{name: builder, context: {cluster: testbed, user: $1, namespace: "$NS"}}]
current-context: builder
KUBECONFIG
}
kubeconfig_for imgbuild-builder "$work/builder.kubeconfig"
# Objects imgbuild made and did not delete (label app.kubernetes.io/managed-by=imgbuild).
imgbuild_objects() { k -n "$NS" get jobs,pods,configmaps,secrets -l app.kubernetes.io/managed-by=imgbuild -o name 2>/dev/null; }
# Deleted pods may show as Terminating for a few seconds: wait for them, then fail.
assert_no_objects() {
  local left i
  for i in $(seq 1 30); do
    left=$(imgbuild_objects)
    [[ -z $left ]] && return 0
    sleep 0.5
  done
  fail "imgbuild objects left in $NS: $left"
}

# The field report's job as one command (`imgbuild add` with ENGINE_FLAGS, the file $work/hello.txt,
# checked by a verification pod pulled through localhost:5000 against $expected): stdout is
# REPO@digest, the builder's log is followed (a stderr line matching LOG_ERE), the tag serves the
# digest, nothing is left behind. Sets ref and digest.
seed_job() { # REPO LOG_ERE ENGINE_FLAG...
  local repo=$1 log=$2 served
  shift 2
  ref=$(imgbuild add "$@" -n "$NS" \
    --from "$CLUSTER_REGISTRY/ones/plugin-host-node:v6.33.1" \
    --add "$work/hello.txt:/opt/app/hello.txt" --user root --workdir /opt/app \
    --to "$CLUSTER_REGISTRY/$repo:latest" \
    --verify-command 'cat /opt/app/hello.txt && echo OK' --expect-output "$expected" --pull-via localhost:5000 \
    2>"$work/stderr") || { cat "$work/stderr" >&2; fail "imgbuild add $* failed"; }
  cat "$work/stderr" >&2
  echo "result: $ref"
  [[ $ref =~ ^$CLUSTER_REGISTRY/$repo@sha256:[0-9a-f]{64}$ ]] || fail "stdout is not REPO@sha256:<digest>: $ref"
  digest=${ref#*@}
  grep -Eq "$log" "$work/stderr" || fail "the builder's log was not followed (no line matching $log on stderr)"
  [[ $(grep -c '^\[verify\]' "$work/stderr") == 3 ]] || fail "the verification pod's three lines were not printed"
  served=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://localhost:5000/$repo:latest")
  [[ $served == "$digest" ]] || fail "the tag serves $served, imgbuild printed $digest"
  assert_no_objects
}
