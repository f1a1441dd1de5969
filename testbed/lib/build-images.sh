#!/usr/bin/env bash
# The testbed's container images.
#   build-images.sh build           build the cached OCI layouts (umoci) of the images imgbuild cannot make yet
#   build-images.sh push REGISTRY   push every image to REGISTRY (localhost:5000, once it is up): imgbuild builds
#                                   busybox, plugin-host-node, pause and kubectl from root filesystems staged in a
#                                   temp dir; the cached layouts (the Kaniko executor) go with skopeo.
# Layouts are cached in $CACHE/images/<name>-<key>/ keyed by a hash of their inputs. imgbuild images are not
# cached: they are rebuilt at every push (about a second for all), reproducibly (SOURCE_DATE_EPOCH=0).
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
IMGBUILD_CLI=${IMGBUILD_CLI:-$(cd "$HERE/../.." && pwd)/dist/imgbuild.mjs}
STD_PATH=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
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

# ------------------------------------------------------------ imgbuild images
# imgbuild_push DIR imgbuild-add-args...: one layer with DIR's contents at /, pushed; prints REPO@sha256:...
# Run from DIR so the image history says "imgbuild add .:/" and not the random temp dir (reproducible digests).
imgbuild_push() { local dir=$1; shift; (cd "$dir" && node "$IMGBUILD_CLI" add -q --add .:/ "$@"); }

push_busybox() { # $1 stage dir, $2 registry
  busybox_root "$1/busybox"
  imgbuild_push "$1/busybox" --from scratch --cmd '["sh"]' --env "$STD_PATH" --to "$2/busybox:1.35"
}

push_plugin_host_node() { # a layer on the busybox image: the node user, its home, /opt
  local r=$1/plugin-host-node reg=$2
  mkdir -p "$r/etc" "$r/home/node" "$r/opt"
  # --chown applies to every entry, so /home/node is root-owned like the rest (fine for a test base image)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nnode:x:1000:1000:node:/home/node:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnode:x:1000:\n' >"$r/etc/group"
  local oci; oci=$(imgbuild_push "$r" --from "$reg/busybox:1.35" --user node --workdir /home/node \
    --label org.opencontainers.image.title=plugin-host-node --to "$reg/ones/plugin-host-node:v6.33.1-oci")
  # The field report's base is a Docker v2 schema 2 image; imgbuild keeps the base's manifest family and
  # has no option to choose it, so skopeo converts (registry to registry: no layer is re-uploaded) and the
  # OCI manifest is deleted again.
  skopeo copy -q --format v2s2 --src-tls-verify=false --dest-tls-verify=false \
    "docker://$reg/ones/plugin-host-node:v6.33.1-oci" "docker://$reg/ones/plugin-host-node:v6.33.1" >&2
  curl -fsS -X DELETE "http://$reg/v2/ones/plugin-host-node/manifests/${oci#*@}" >&2
  echo "$reg/ones/plugin-host-node:v6.33.1 (Docker v2 schema 2)"
}

push_pause() {
  mkdir -p "$1/pause"; cp "$PAUSE" "$1/pause/pause"
  imgbuild_push "$1/pause" --from scratch --entrypoint '["/pause"]' --user 65535:65535 --to "$2/pause:3.10"
}

push_kubectl() { # busybox + kubectl, for in-cluster API checks with a ServiceAccount token
  mkdir -p "$1/kubectl/usr/local/bin"; cp "$KUBECTL" "$1/kubectl/usr/local/bin/kubectl"
  imgbuild_push "$1/kubectl" --from "$2/busybox:1.35" --to "$2/kubectl:$K8S_VERSION"
}

build_layouts() { # -> "<oci-layout-dir>:<tag> <destination repo:tag>" lines
  echo "$(build kaniko-executor "$KANIKO_VERSION-debug" "$(inputs_hash "$EXECUTOR" "$BUSYBOX" "$CA_BUNDLE")" b_kaniko) kaniko-project/executor:$KANIKO_VERSION-debug"
  # busybox, plugin-host-node, pause and kubectl were umoci layouts before imgbuild made them: drop old caches
  rm -rf "$IMG"/busybox-* "$IMG"/plugin-host-node-* "$IMG"/pause-* "$IMG"/kubectl-*
}

for f in "$EXECUTOR" "$PAUSE" "$BUSYBOX" "$CA_BUNDLE" "$KUBECTL"; do [[ -f $f ]] || { log "missing $f"; exit 1; }; done
case ${1:-} in
  build) build_layouts >/dev/null ;;
  push)
    reg=${2:?usage: build-images.sh push REGISTRY}
    [[ -f $IMGBUILD_CLI ]] || { log "imgbuild is not built: $IMGBUILD_CLI is missing (run 'npm ci' or 'npm run build' in the repository, or set IMGBUILD_CLI)"; exit 1; }
    stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
    chmod 755 "$stage"
    for fn in push_busybox push_plugin_host_node push_pause push_kubectl; do
      out=$("$fn" "$stage" "$reg") || { log "$fn failed"; exit 1; }
      log "pushed $out"
    done
    while read -r src dst; do
      skopeo copy -q --dest-tls-verify=false "oci:$src" "docker://$reg/$dst" >&2
      log "pushed $reg/$dst (skopeo, from $src)"
    done < <(build_layouts)
    ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
