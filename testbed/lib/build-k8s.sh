#!/usr/bin/env bash
# Build the Kubernetes components (and kubectl) from the k8s.io/kubernetes Go module.
# Output: $CACHE/k8s-$K8S_VERSION/bin/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl}
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.12}
CACHE=${IMGBUILD_CACHE:-/var/cache/imgbuild}
OUT=$CACHE/k8s-$K8S_VERSION/bin
CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
missing=0
for c in "${CMDS[@]}"; do [[ -x $OUT/$c ]] || missing=1; done
if [[ $missing == 0 ]]; then echo "k8s $K8S_VERSION: cached in $OUT"; exit 0; fi

STAGING_VERSION=v0.${K8S_VERSION#v1.}
SRC=$CACHE/k8s-$K8S_VERSION/src
mkdir -p "$SRC" "$OUT"
cd "$SRC"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
# The kubernetes module's go.mod requires the staging modules at v0.0.0 and replaces them with
# ./staging/src/... paths; replace directives of a dependency are ignored, so this wrapper module
# replaces each staging module with its published version.
proxy=$(go env GOPROXY); proxy=${proxy%%,*}; [[ $proxy == https://* ]] || proxy=https://proxy.golang.org
mods=$(curl -fsSL "$proxy/k8s.io/kubernetes/@v/$K8S_VERSION.mod" | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p')
{
  echo "module imgbuild.local/k8sbuild"
  echo
  echo "go 1.25.0"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  for m in $mods; do echo "replace $m => $m $STAGING_VERSION"; done
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
echo "k8s $K8S_VERSION: resolving modules"
go mod tidy -e >/dev/null 2>&1 || true
go mod download k8s.io/kubernetes
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
LD="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
pkgs=(); for c in "${CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
echo "k8s $K8S_VERSION: building ${CMDS[*]} (this takes a long time cold)"
start=$(date +%s)
go build -p "${BUILD_PROCS:-2}" -trimpath -tags tools -ldflags "$LD" -o "$OUT/" "${pkgs[@]}"
echo "k8s $K8S_VERSION: built in $(( $(date +%s) - start ))s -> $OUT"
