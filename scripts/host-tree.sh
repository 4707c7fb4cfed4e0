#!/usr/bin/env bash
# host-tree.sh SUITE: makes (or reuses) a Debian SUITE tree for the host matrix, from Debian's packages
# with mmdebstrap, cached in /var/cache/ext-hosts/SUITE. The tree is made again when its package list
# (.ci/host-packages.txt + .ci/fixture-deps.txt) or this script changes. Prints the tree's path.
# Nix in the tree keeps Debian's defaults (no nix.conf: sandbox = true, build users of group nixbld).
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:?usage: host-tree.sh SUITE}
cache=/var/cache/ext-hosts
tree=$cache/$suite
packages=$(grep -hv '^#' .ci/host-packages.txt .ci/fixture-deps.txt | grep . | sort -u | paste -sd, -)
stamp=$(printf '%s\n%s\n' "$packages" "$(sha256sum scripts/host-tree.sh)" | sha256sum | cut -c1-16)
if [ -f "$tree/.ext-stamp" ] && [ "$(cat "$tree/.ext-stamp")" = "$stamp" ]; then echo "$tree"; exit 0; fi
mkdir -p "$cache"
rm -rf "$tree.new"
# sid's Release file may be past its Valid-Until; no recommends, as on a minimal host.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='APT::Install-Recommends "false"' \
  "$suite" "$tree.new" http://deb.debian.org/debian >&2
# The tests' fixtures and /var/cache/ext-fixtures are bind-mounted here by scripts/in-host.sh.
mkdir -p "$tree.new/var/cache/ext-fixtures" "$tree.new/work"
echo "$stamp" > "$tree.new/.ext-stamp"
rm -rf "$tree"
mv "$tree.new" "$tree"
echo "$tree"
