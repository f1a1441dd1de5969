#!/usr/bin/env bash
# Makes sure the real servers and tools the tests drive are installed (none of them is ours):
# run by `npm test` (as its pretest step) and by .ci/run. The one list of them is
# scripts/test-packages.txt (Debian package names, one a line; # starts a comment).
#
# As root, missing Debian packages are installed with apt-get. Otherwise it stops at once,
# naming the one command to run. IMGBUILD_SKIP_TOOL_CHECK=1 skips the check (not in CI).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mapfile -t PACKAGES < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/scripts/test-packages.txt")
say() { echo "test tools: $*" >&2; }

if [[ ${IMGBUILD_SKIP_TOOL_CHECK:-0} == 1 ]]; then
  say "check skipped (IMGBUILD_SKIP_TOOL_CHECK=1)"
  exit 0
fi

if ! command -v dpkg-query >/dev/null; then
  say "this is not a Debian-based system, so nothing is installed; the tests need: ${PACKAGES[*]} (Debian package names)"
  exit 0
fi

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done

if ((${#missing[@]})); then
  command_line="apt-get install -y --no-install-recommends ${missing[*]}"
  if ((EUID != 0)); then
    say "the tests drive real servers and tools that are not installed: ${missing[*]}"
    say "install them, then run npm test again:"
    echo "  sudo $command_line" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Go builds BuildKit's Dockerfile frontend, the witness of the parser tests (cached after the
# first build; see test/tools/build-buildkit-dockerfile.sh). Debian's golang-go is too old.
go_wanted=$(awk '$1 == "go" { print $2; exit }' "$ROOT/test/tools/buildkit-dockerfile/go.mod")
go_have=$(go env GOVERSION 2>/dev/null | sed 's/^go//') || go_have=
if [[ -z $go_have ]] || [[ $(printf '%s\n%s\n' "$go_wanted" "$go_have" | sort -V | head -n1) != "$go_wanted" ]]; then
  say "Go $go_wanted or newer is needed (found: ${go_have:-none}); Debian's golang-go is too old."
  say "install it from https://go.dev/dl/ and put its bin/ on PATH, then run npm test again"
  exit 1
fi
