#!/usr/bin/env bash
# Build the testbed's container images as OCI layouts with umoci (no daemon, no registry pull).
# Each image is cached in $CACHE/images/<name>/ keyed by a hash of its inputs.
# Usage: build-images.sh         -> prints "<oci-layout-dir>:<tag> <registry-repo:tag> <format>" lines
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${IMGBUILD_CACHE:-/var/cache/imgbuild}
KANIKO_VERSION=${KANIKO_VERSION:-v1.24.0}
EXECUTOR=$CACHE/kaniko-$KANIKO_VERSION/bin/executor
PAUSE=$CACHE/pause/bin/pause
K8S_VERSION=${K8S_VERSION:-v1.34.12}
KUBECTL=$CACHE/k8s-$K8S_VERSION/bin/kubectl
BUSYBOX=/bin/busybox
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
IMG=$CACHE/images
mkdir -p "$IMG"
export SOURCE_DATE_EPOCH=0
log() { echo "images: $*" >&2; }

# tar a directory as a reproducible layer (root-owned, fixed mtime, sorted)
layer_tar() { chmod 755 "$1"; tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf "$2" .; }

# new_image NAME TAG ROOTFS_DIR -- umoci config flags...
new_image() {
  local dir=$1 tag=$2 root=$3; shift 3
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  umoci init --layout "$dir.tmp/oci"
  umoci new --image "$dir.tmp/oci:$tag"
  layer_tar "$root" "$dir.tmp/layer.tar"
  umoci raw add-layer --image "$dir.tmp/oci:$tag" --history.created 1970-01-01T00:00:00Z \
    --history.created_by "imgbuild testbed: $(basename "$dir")" "$dir.tmp/layer.tar"
  umoci config --no-history --image "$dir.tmp/oci:$tag" --created 1970-01-01T00:00:00Z \
    --architecture amd64 --os linux "$@"
  umoci gc --layout "$dir.tmp/oci"
  rm -f "$dir.tmp/layer.tar"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
}

busybox_root() { # DIR: busybox userland in /bin with /etc/passwd
  local r=$1
  mkdir -p "$r/bin" "$r/etc" "$r/root" "$r/tmp" "$r/home" "$r/var/tmp"
  chmod 1777 "$r/tmp" "$r/var/tmp"; chmod 700 "$r/root"
  cp "$BUSYBOX" "$r/bin/busybox"
  for a in $("$BUSYBOX" --list); do [[ $a == busybox ]] || ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$r/etc/group"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
}

inputs_hash() { cat "$@" "$0" | sha256sum | cut -c1-16; }

build() { # NAME TAG KEY builder-fn
  local name=$1 tag=$2 key=$3 fn=$4
  local dir=$IMG/$name-$key
  if [[ ! -f $dir/oci/index.json ]]; then
    log "building $name:$tag"
    local root; root=$(mktemp -d)
    "$fn" "$root" "$dir" "$tag"
    rm -rf "$root"
    local old; for old in "$IMG/$name"-*; do   # drop superseded builds of this image
      [[ $old == "$dir" || $old == *.tmp ]] || rm -rf "$old"; done
  fi
  echo "$dir/oci:$tag"
}

b_busybox() { busybox_root "$1"; new_image "$2" "$3" "$1" --config.cmd sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; }

b_plugin_host_node() {
  busybox_root "$1"
  echo 'node:x:1000:1000:node:/home/node:/bin/sh' >> "$1/etc/passwd"
  echo 'node:x:1000:' >> "$1/etc/group"
  mkdir -p "$1/home/node" "$1/opt"; chown 1000:1000 "$1/home/node"
  # layer_tar forces root ownership; that is fine for a test base image.
  new_image "$2" "$3" "$1" --config.cmd sh --config.user node --config.workingdir /home/node \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.label org.opencontainers.image.title=plugin-host-node
}

b_kubectl() { # busybox + kubectl, for in-cluster API checks with a ServiceAccount token
  busybox_root "$1"; mkdir -p "$1/usr/local/bin"; cp "$KUBECTL" "$1/usr/local/bin/kubectl"
  new_image "$2" "$3" "$1" --config.cmd sh \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

b_pause() { mkdir -p "$1"; cp "$PAUSE" "$1/pause"; new_image "$2" "$3" "$1" --config.entrypoint /pause --config.user 65535:65535; }

b_kaniko() { # laid out like the upstream executor "-debug" image (deploy/Dockerfile_debug), minus credential helpers
  local r=$1
  mkdir -p "$r/kaniko/ssl/certs" "$r/kaniko/.docker" "$r/busybox" "$r/workspace" "$r/etc" "$r/bin"
  chmod 777 "$r/kaniko"   # world-writable, as upstream, for non-root runs
  cp "$EXECUTOR" "$r/kaniko/executor"
  cp "$CA_BUNDLE" "$r/kaniko/ssl/certs/ca-certificates.crt"
  cp "$BUSYBOX" "$r/busybox/busybox"
  for a in $("$BUSYBOX" --list); do [[ $a == busybox ]] || ln -sf busybox "$r/busybox/$a"; done
  ln -s /busybox/sh "$r/bin/sh"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
  # VOLUME /busybox: the runtime mounts it, so kaniko ignores it while unpacking a base image onto /
  new_image "$2" "$3" "$r" --config.entrypoint /kaniko/executor --config.workingdir /workspace \
    --config.volume /busybox \
    --config.env HOME=/root --config.env USER=root \
    --config.env PATH=/usr/local/bin:/kaniko:/busybox \
    --config.env SSL_CERT_DIR=/kaniko/ssl/certs --config.env DOCKER_CONFIG=/kaniko/.docker/ \
    --config.env DOCKER_CREDENTIAL_GCR_CONFIG=/kaniko/.config/gcloud/docker_credential_gcr_config.json \
    --config.label org.opencontainers.image.version=$KANIKO_VERSION-debug
}

for f in "$EXECUTOR" "$PAUSE" "$BUSYBOX" "$CA_BUNDLE" "$KUBECTL"; do [[ -f $f ]] || { log "missing $f"; exit 1; }; done
# output: <oci src> <destination repo:tag> <manifest format>
echo "$(build busybox 1.35 "$(inputs_hash "$BUSYBOX")" b_busybox) busybox:1.35 oci"
echo "$(build plugin-host-node v6.33.1 "$(inputs_hash "$BUSYBOX")" b_plugin_host_node) ones/plugin-host-node:v6.33.1 v2s2"
echo "$(build pause 3.10 "$(inputs_hash "$PAUSE")" b_pause) pause:3.10 oci"
echo "$(build kubectl "$K8S_VERSION" "$(inputs_hash "$BUSYBOX" "$KUBECTL")" b_kubectl) kubectl:$K8S_VERSION oci"
echo "$(build kaniko-executor "$KANIKO_VERSION-debug" "$(inputs_hash "$EXECUTOR" "$BUSYBOX" "$CA_BUNDLE")" b_kaniko) kaniko-project/executor:$KANIKO_VERSION-debug oci"
