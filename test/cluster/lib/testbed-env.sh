# Sourced by the cluster tests: point KUBECONFIG and PATH at the running testbed, or stop.
# `eval "$(testbed env)"` alone would go on with whatever KUBECONFIG was set when env fails.
# shellcheck shell=bash
testbed_env=$("$ROOT/testbed/testbed" env) || { echo "FAIL: 'testbed/testbed env' failed: is the testbed up? (sudo testbed/testbed up)" >&2; exit 1; }
eval "$testbed_env"
unset testbed_env
