#!/usr/bin/env bash
# `npm run test:cluster`: the cluster tests are shell scripts, test/cluster/*.sh, that run against the
# Kubernetes testbed (docs/testbed.md). Their runner is testbed/ci.sh, as in CI: it builds the testbed
# (cached), brings it up, runs every script, prints the failing component's logs, and always takes it down.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cat >&2 <<MESSAGE
test:cluster: running test/cluster/*.sh on a single-node Kubernetes testbed through testbed/ci.sh
  (builds it, cached under ${IMGBUILD_CACHE:-/var/cache/imgbuild}: minutes when cold; brings it up; runs the tests;
  takes it down). To run one script against a testbed you already brought up: test/cluster/NAME.sh
MESSAGE
if [[ $(id -u) != 0 ]]; then
  echo "test:cluster: the testbed needs root (it runs a kubelet, containerd and iptables rules): run sudo npm run test:cluster" >&2
  exit 1
fi
exec bash "$ROOT/testbed/ci.sh"
