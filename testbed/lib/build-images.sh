#!/usr/bin/env bash
# The testbed's container images, all made by imgbuild from root filesystems staged in a temp dir.
#   build-images.sh build           check that every input (binaries, imgbuild) is there
#   build-images.sh push REGISTRY   build and push every image to REGISTRY (localhost:5000, once it is up)
# Images are not cached: building and pushing all of them takes about two seconds, reproducibly
# (SOURCE_DATE_EPOCH=0, so the same inputs give the same digests).
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
IMGBUILD_CLI=${IMGBUILD_CLI:-$(cd "$HERE/../.." && pwd)/dist/imgbuild.mjs}
STD_PATH=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export SOURCE_DATE_EPOCH=0
log() { echo "images: $*" >&2; }

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

# ------------------------------------------------------------ images
# imgbuild_push DIR imgbuild-add-args...: one layer with DIR's contents at /, pushed; prints REPO@sha256:...
imgbuild_push() { local dir=$1; shift; chmod 755 "$dir"; node "$IMGBUILD_CLI" add -q --add "$dir:/" "$@"; }

push_busybox() { # $1 stage dir, $2 registry. Docker v2 schema 2, so the images built on it are too.
  busybox_root "$1/busybox"
  imgbuild_push "$1/busybox" --from scratch --format docker --cmd '["sh"]' --env "$STD_PATH" --to "$2/busybox:1.35"
}

push_plugin_host_node() { # the field report's base (Docker v2 schema 2, from busybox): the node user, its home, /opt
  local r=$1/plugin-host-node
  mkdir -p "$r/etc" "$r/home/node" "$r/opt"
  # --chown applies to every entry, so /home/node is root-owned like the rest (fine for a test base image)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nnode:x:1000:1000:node:/home/node:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnode:x:1000:\n' >"$r/etc/group"
  imgbuild_push "$r" --from "$2/busybox:1.35" --user node --workdir /home/node \
    --label org.opencontainers.image.title=plugin-host-node --to "$2/ones/plugin-host-node:v6.33.1"
}

push_pause() {
  mkdir -p "$1/pause"; cp "$PAUSE" "$1/pause/pause"
  imgbuild_push "$1/pause" --from scratch --entrypoint '["/pause"]' --user 65535:65535 --to "$2/pause:3.10"
}

push_kubectl() { # busybox + kubectl, for in-cluster API checks with a ServiceAccount token
  mkdir -p "$1/kubectl/usr/local/bin"; cp "$KUBECTL" "$1/kubectl/usr/local/bin/kubectl"
  imgbuild_push "$1/kubectl" --from "$2/busybox:1.35" --to "$2/kubectl:$K8S_VERSION"
}

push_kaniko() { # laid out like the upstream executor "-debug" image (deploy/Dockerfile_debug), minus credential helpers
  local r=$1/kaniko
  mkdir -p "$r/kaniko/ssl/certs" "$r/kaniko/.docker" "$r/busybox" "$r/workspace" "$r/etc" "$r/bin"
  chmod 777 "$r/kaniko"   # world-writable, as upstream, for non-root runs
  cp "$EXECUTOR" "$r/kaniko/executor"
  cp "$CA_BUNDLE" "$r/kaniko/ssl/certs/ca-certificates.crt"
  cp "$BUSYBOX" "$r/busybox/busybox"
  for a in $("$BUSYBOX" --list); do [[ $a == busybox ]] || ln -sf busybox "$r/busybox/$a"; done
  ln -s /busybox/sh "$r/bin/sh"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
  # VOLUME /busybox: the runtime mounts it, so kaniko ignores it while unpacking a base image onto /
  imgbuild_push "$r" --from scratch --entrypoint '["/kaniko/executor"]' --workdir /workspace --volume /busybox \
    --env HOME=/root --env USER=root --env PATH=/usr/local/bin:/kaniko:/busybox \
    --env SSL_CERT_DIR=/kaniko/ssl/certs --env DOCKER_CONFIG=/kaniko/.docker/ \
    --env DOCKER_CREDENTIAL_GCR_CONFIG=/kaniko/.config/gcloud/docker_credential_gcr_config.json \
    --label "org.opencontainers.image.version=$KANIKO_VERSION-debug" \
    --to "$2/kaniko-project/executor:$KANIKO_VERSION-debug"
}

for f in "$EXECUTOR" "$PAUSE" "$BUSYBOX" "$CA_BUNDLE" "$KUBECTL"; do [[ -f $f ]] || { log "missing $f"; exit 1; }; done
[[ -f $IMGBUILD_CLI ]] || { log "imgbuild is not built: $IMGBUILD_CLI is missing (run 'npm ci' or 'npm run build' in the repository, or set IMGBUILD_CLI)"; exit 1; }
case ${1:-} in
  build) rm -rf "$CACHE/images" ;;   # umoci layouts of earlier testbed versions
  push)
    reg=${2:?usage: build-images.sh push REGISTRY}
    stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
    chmod 755 "$stage"
    for fn in push_busybox push_plugin_host_node push_pause push_kubectl push_kaniko; do
      out=$("$fn" "$stage" "$reg") || { log "$fn failed"; exit 1; }
      log "pushed $out"
    done
    ;;
  *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
