#!/usr/bin/env bash
# test-hosts.sh [SUITE…]: the test suite inside each host-matrix tree (default: trixie sid), after
# it ran on this machine. Each tree is a Debian SUITE made from Debian's packages (scripts/host-tree.sh)
# with Nix, systemd and erofs-utils as Debian ships them there; scripts/in-host.sh enters it with a
# fresh /nix (Nix installed, never run) and tmpfs state directories. The bundle built here is used.
#
# Left out in the trees, and why:
#   test/integration/boot-real.test.ts  boots its own Debian 12 guest with systemd-nspawn; what it
#       checks is the guest's boot (its systemd runs ext's units), not the host, and a nested
#       mmdebstrap of the guest in every tree would cost ~30 s each for the same guest.
#   test/integration/boot-fleet.test.ts  boots the trixie tree itself as its guest (issue 18's boot
#       test: systemd 257, systemd-sysupdate); from inside a tree it would boot a tree in a tree.
#   test/integration/real-programs.test.ts  CPython's regression tests and git's workflows, relocated.
#       Its point is the Debian 12 host's own CPython and git hidden; the programs are the Debian 12
#       compile either way (a tree would unpack the same tars from /var/cache/ext-fixtures/built), and
#       what a tree changes — its Nix, systemd-sysext and mkfs.erofs — relocation.test.ts covers there.
#       Two regrtest runs (~2 min each) and an ext add of a 226 MiB closure per tree would add ~4 min
#       per tree (~8 of CI's 90) for that. The tars themselves unpack and run in trixie (checked).
set -euo pipefail
cd "$(dirname "$0")/.."
suites=("$@")
# The trees have no npm: the bundle the tests run is built here, once.
npm run build --silent
[ ${#suites[@]} -gt 0 ] || suites=(trixie sid)
summary=()
for suite in "${suites[@]}"; do
  start=$(date +%s)
  tree=$(bash scripts/host-tree.sh "$suite")
  made=$(( $(date +%s) - start ))
  versions=$(bash scripts/in-host.sh "$suite" sh -c 'printf "%s, %s, %s, node %s" "$(nix --version)" "$(systemd-sysext --version | head -1)" "$(mkfs.erofs --version 2>&1 | head -1)" "$(node --version)"')
  echo "== host $suite ($tree): $versions"
  start=$(date +%s)
  status=0
  bash scripts/in-host.sh "$suite" env CI="${CI:-}" EXT_TEST_HOST="$suite" \
    node node_modules/vitest/vitest.mjs run --exclude test/integration/boot-real.test.ts \
    --exclude test/integration/boot-fleet.test.ts \
    --exclude test/integration/real-programs.test.ts || status=$?
  took=$(( $(date +%s) - start ))
  summary+=("$suite: exit $status, suite ${took} s (tree ready in ${made} s) — $versions")
  [ "$status" -eq 0 ] || { printf '%s\n' "${summary[@]}"; exit "$status"; }
done
echo "== host matrix"
printf '%s\n' "${summary[@]}"
