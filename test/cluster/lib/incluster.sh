# Sourced by the --in-cluster tests (ROOT set): the testbed's environment, a namespace that enforces
# Pod Security "restricted" (kaniko.sh), the testbed's Node image and CA.
# shellcheck shell=bash
. "$ROOT/test/cluster/lib/testbed-env.sh"
POD_SECURITY=restricted
. "$ROOT/test/cluster/lib/kaniko.sh"
export IMGBUILD_NODE_IMAGE=${IMGBUILD_NODE_IMAGE:-localhost:5000/node:22-imgbuild}
TESTBED_CA=${IMGBUILD_TESTBED_DIR:-/var/lib/imgbuild-testbed}/pki/ca.crt
[[ -r $TESTBED_CA ]] || { echo "FAIL: the testbed CA $TESTBED_CA is not readable" >&2; exit 1; }
