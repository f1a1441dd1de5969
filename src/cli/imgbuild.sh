#!/bin/sh
# The `imgbuild` command (copied to dist/imgbuild by scripts/bundle.mjs): runs dist/cli.cjs with
# the `node` on PATH, as `#!/usr/bin/env node` would.
#
# Node 20 reads and parses the bundle NODE_EXTRA_CA_CERTS names at every start, TLS or not
# (about 50 ms, a third of a small `imgbuild add`). So the path travels in
# IMGBUILD_EXTRA_CA_CERTS instead: imgbuild puts NODE_EXTRA_CA_CERTS back for the programs it
# starts, and adds the file to the certificates it trusts when it makes a TLS connection
# (src/cli/extra-ca.ts). Left alone when NODE_OPTIONS picks Node's CA store (--use-openssl-ca,
# --use-system-ca, ...): then Node's own handling is the one to keep.
if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then
  case ${NODE_OPTIONS-} in
  *-ca*) ;;
  *)
    IMGBUILD_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
    export IMGBUILD_EXTRA_CA_CERTS
    unset NODE_EXTRA_CA_CERTS
    ;;
  esac
fi

# npm links the command from node_modules/.bin (or a global bin directory): find the real file.
self=$0
case $self in */*) ;; *) self=./$self ;; esac
while [ -h "$self" ]; do
  link=$(readlink "$self")
  case $link in
  /*) self=$link ;;
  *) self=${self%/*}/$link ;;
  esac
done
if ! command -v node >/dev/null 2>&1; then
  echo "error: imgbuild needs Node.js (20 or newer), and there is no node on PATH" >&2
  echo "hint: install Node.js, or put the directory holding node on PATH" >&2
  exit 127
fi
exec node "${self%/*}/cli.cjs" "$@"
