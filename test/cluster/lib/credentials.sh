# Shared by the engines' credential tests (source after kaniko.sh): the testbed's password-protected
# endpoint, a docker config with and one without its credentials, and the checks every engine must pass.
# The sourcing script defines auth_add ARGS... (its engine's `imgbuild add` to $AUTH_REGISTRY/$CREDENTIALS_REPO).
AUTH_REGISTRY=registry.kube-system.svc.cluster.local:5001
password=$(cat "${IMGBUILD_TESTBED_DIR:-/var/lib/imgbuild-testbed}/registry/auth-password")
auth=$(printf 'imgbuild:%s' "$password" | base64 -w0)
printf 'hello with credentials\n' >"$work/hello.txt"
mkdir -p "$work/nocreds" "$work/creds"
echo '{}' >"$work/nocreds/config.json"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$AUTH_REGISTRY" "$auth" >"$work/creds/config.json"

no_secret_material() { # FILE...
  if grep -qF -e "$password" -e "$auth" "$@"; then fail "credential material in $*"; fi
}

# Without credentials the build fails and stderr matches the engine's diagnosis (an ERE).
expect_refused_without_credentials() { # DIAGNOSIS-ERE
  local rc=0
  DOCKER_CONFIG=$work/nocreds auth_add >"$work/out" 2>"$work/err" || rc=$?
  ((rc != 0)) || fail "a build against $AUTH_REGISTRY succeeded without credentials"
  grep -Eiq "$1" "$work/err" || { cat "$work/err" >&2; fail "no credentials diagnosis"; }
  echo "ok refused: $(grep -E '^(error|hint):' "$work/err" | cut -c1-200 | tr '\n' ' ')"
  assert_no_objects
}

# --dry-run names the per-build Secret and prints none of its material; a build with the local
# docker config pushes, prints no credential, and the tag serves the printed digest.
expect_credentials_from_docker_config() {
  echo "# --dry-run with credentials: the Secret is named, never printed"
  DOCKER_CONFIG=$work/creds auth_add --dry-run >"$work/dry.yaml"
  grep -q '^# Secret imgbuild-.*-credentials (kubernetes.io/dockerconfigjson)' "$work/dry.yaml" || fail "--dry-run does not mention the Secret"
  no_secret_material "$work/dry.yaml"

  echo "# credentials from the local docker config"
  DOCKER_CONFIG=$work/creds auth_add -v >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "the build with credentials failed"; }
  local ref served
  ref=$(cat "$work/out")
  [[ $ref =~ ^$AUTH_REGISTRY/$CREDENTIALS_REPO@sha256:[0-9a-f]{64}$ ]] || fail "unexpected result: $ref"
  no_secret_material "$work/out" "$work/err"
  served=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://localhost:5000/$CREDENTIALS_REPO:latest")
  [[ $served == "${ref#*@}" ]] || fail "the tag serves $served, imgbuild printed ${ref#*@}"
  assert_no_objects
  echo "ok pushed $ref"
}

# With --keep the objects stay, each created naming the build's owner ConfigMap in its
# ownerReferences: deleting that one (as `imgbuild clean` does; it lists ConfigMaps by label) has
# Kubernetes delete the Secret too, which the builder's Role cannot list.
expect_owner_collects_kept_objects() {
  echo "# --keep: the owner ConfigMap takes the kept Secret and Job along"
  DOCKER_CONFIG=$work/creds auth_add --keep >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "the build with --keep failed"; }
  local id owner gone=""
  id=$(grep -o 'imgbuild.dev/build-id=[0-9a-f]*' "$work/err" | head -n1 | cut -d= -f2)
  [[ -n $id ]] || { cat "$work/err" >&2; fail "no build id in the --keep message"; }
  for object in "secret/imgbuild-$id-credentials" "job/imgbuild-$id"; do
    owner=$(k -n "$NS" get "$object" -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')
    [[ $owner == "ConfigMap/imgbuild-$id-owner" ]] || fail "$object is owned by '$owner', not the build's owner ConfigMap"
  done
  k -n "$NS" delete configmap "imgbuild-$id-owner" >/dev/null
  for _ in $(seq 60); do
    if ! k -n "$NS" get "secret/imgbuild-$id-credentials" >/dev/null 2>&1 && ! k -n "$NS" get "job/imgbuild-$id" >/dev/null 2>&1; then gone=yes; break; fi
    sleep 1
  done
  [[ -n $gone ]] || fail "the Secret or the Job outlived the owner ConfigMap by 60 s"
  imgbuild clean -n "$NS" >/dev/null
  assert_no_objects
  echo "ok the kept Secret and Job went with their owner"
}
