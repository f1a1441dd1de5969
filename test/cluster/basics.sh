#!/usr/bin/env bash
# Cluster basics the seed scenario relies on, checked against the running testbed:
# RBAC, ServiceAccount tokens used from a pod, PodSecurity admission, cluster DNS, Service routing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/cluster/lib/testbed-env.sh"
KUBECTL=${KUBECTL:-kubectl}
k() { "$KUBECTL" "$@"; }
NS=testbed-basics
BB=localhost:5000/busybox:1.35
KC_IMG=localhost:5000/kubectl:v1.34.12
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
t0=$SECONDS
k delete ns "$NS" --ignore-not-found --wait=true >/dev/null
k create ns "$NS" >/dev/null
k label ns "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null

# PodSecurity: a privileged pod is rejected in a "restricted" namespace
if out=$(k -n "$NS" run priv --image=$BB --restart=Never \
    --overrides='{"spec":{"containers":[{"name":"priv","image":"'$BB'","command":["true"],"securityContext":{"privileged":true}}]}}' 2>&1); then
  bad "PodSecurity admitted a privileged pod in a restricted namespace"
else
  grep -q 'violates PodSecurity "restricted' <<<"$out" && ok "PodSecurity rejects privileged pod" || bad "unexpected error: $out"
fi

# RBAC: the namespace's default ServiceAccount may not list secrets
[[ $(k auth can-i list secrets -n "$NS" --as=system:serviceaccount:$NS:default 2>/dev/null) == no ]] &&
  ok "RBAC denies secrets to default ServiceAccount" || bad "RBAC allowed default SA to list secrets"

# a restricted-compliant pod: DNS, API server via the kubernetes Service with its SA token
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: probe}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: probe
    image: $KC_IMG
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    command: [sh, -c]
    args:
    - |
      nslookup kubernetes.default.svc.cluster.local | grep -q 'Address: 10.96.0.1' && echo dns-ok
      nslookup registry.kube-system.svc.cluster.local | grep -q 'Address: 10.96.0.50' && echo registry-dns-ok
      # in-cluster config: KUBERNETES_SERVICE_HOST/PORT, the projected token and kube-root-ca.crt
      kubectl get --raw /version | grep -q '"gitVersion": "v1.34' && echo api-ok
      kubectl auth whoami -o jsonpath='{.status.userInfo.username}' | grep -qx "system:serviceaccount:$NS:default" && echo api-whoami-sa
      kubectl get secrets 2>&1 | grep -q 'Forbidden' && echo api-rbac-forbidden
      wget -qO- --no-check-certificate https://registry.kube-system.svc.cluster.local:5000/v2/_catalog | grep -q plugin-host-node && echo registry-ok
      true
YAML
if k -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded pod/probe --timeout=90s >/dev/null; then
  out=$(k -n "$NS" logs probe)
  for w in dns-ok registry-dns-ok api-ok api-whoami-sa api-rbac-forbidden registry-ok; do
    grep -qx "$w" <<<"$out" && ok "pod: $w" || bad "pod: $w missing"
  done
else
  bad "probe pod did not succeed"; k -n "$NS" describe pod probe | tail -20; k -n "$NS" logs probe || true
fi
k delete ns "$NS" --wait=false >/dev/null
if ((fails)); then echo "FAIL basics: $fails check(s) ($((SECONDS - t0))s)"; exit 1; fi
echo "PASS basics ($((SECONDS - t0))s)"
