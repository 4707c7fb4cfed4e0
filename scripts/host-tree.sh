#!/usr/bin/env bash
# host-tree.sh SUITE: makes (or reuses) a Debian SUITE tree for the host matrix, from Debian's packages
# with mmdebstrap, cached in /var/cache/ext-hosts/SUITE-STAMP, STAMP a hash of its package list
# (.ci/host-packages.txt + .ci/fixture-deps.txt) and this script: a branch that changes the list gets a
# tree of its own instead of rebuilding the one another branch's test is running in. Trees of other
# stamps not used for 3 days are removed. Prints the tree's path.
# Nix in the tree keeps Debian's defaults (no nix.conf: sandbox = true, build users of group nixbld).
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:?usage: host-tree.sh SUITE}
cache=/var/cache/ext-hosts
packages=$(grep -hv '^#' .ci/host-packages.txt .ci/fixture-deps.txt | grep . | sort -u | paste -sd, -)
stamp=$(printf '%s\n%s\n' "$packages" "$(sha256sum scripts/host-tree.sh)" | sha256sum | cut -c1-16)
tree=$cache/$suite-$stamp
if [ -f "$tree/.ext-stamp" ] && [ "$(cat "$tree/.ext-stamp")" = "$stamp" ]; then touch "$tree/.ext-stamp"; echo "$tree"; exit 0; fi
mkdir -p "$cache"
# One builder per tree: a second run (another test run entering the same tree) waits for the first
# and then uses its tree, instead of deleting the half-made tree.new under it.
exec 9>"$cache/.$suite-$stamp.lock"
flock 9
if [ -f "$tree/.ext-stamp" ] && [ "$(cat "$tree/.ext-stamp")" = "$stamp" ]; then touch "$tree/.ext-stamp"; echo "$tree"; exit 0; fi
# Trees of other lists that nobody entered for 3 days (each use touches the stamp).
find "$cache" -mindepth 2 -maxdepth 2 -name .ext-stamp -mtime +3 -path "$cache/$suite-*/.ext-stamp" -printf '%h\n' | while read -r old; do rm -rf "$old"; done
rm -rf "$tree.new"
# sid's Release file may be past its Valid-Until; no recommends, as on a minimal host.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='APT::Install-Recommends "false"' \
  "$suite" "$tree.new" http://deb.debian.org/debian >&2
# Nix kills every process of a build user before it builds as that user, and a kill from the host
# reaches into the tree's PID namespace: build users that share a uid with the host's (or another
# tree's) kill each other's builders ("failed due to signal 9") when both build at once. Each tree's
# nixbld users get uids of their own, 30000 + 1000 × (the suite's place in the list below) + N.
case "$suite" in trixie) base=31000 ;; sid) base=32000 ;; *) base=33000 ;; esac
awk -F: -v OFS=: -v base="$base" '$1 ~ /^nixbld[0-9]+$/ { $3 = base + substr($1, 7) } { print }' \
  "$tree.new/etc/passwd" > "$tree.new/etc/passwd.ext" && mv "$tree.new/etc/passwd.ext" "$tree.new/etc/passwd"
chmod 644 "$tree.new/etc/passwd"
# The tests' fixtures and /var/cache/ext-fixtures are bind-mounted here by scripts/in-host.sh.
mkdir -p "$tree.new/var/cache/ext-fixtures" "$tree.new/work"
echo "$stamp" > "$tree.new/.ext-stamp"
rm -rf "$tree"
mv "$tree.new" "$tree"
echo "$tree"
