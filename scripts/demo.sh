#!/usr/bin/env bash
# The offline demo on the bundled fixture packages. Everything that merges runs in a private mount
# namespace with tmpfs over ext's state directories: the host's /usr and /var/lib are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# The fixtures copy the host's Debian files: where Nix builds in its sandbox (sandbox = true, Nix's
# default on Debian ≥ 13, and every private store) it must see them. /bin/sh only where Nix's build has
# no sandbox shell of its own (Debian 12's 2.8); never /bin itself (see test/helpers/nix-env.ts).
sandbox_paths="/usr /lib=/usr/lib /lib64=/usr/lib64 /var/cache/ext-fixtures"
nix --extra-experimental-features nix-command show-config 2>/dev/null | grep -q '^sandbox-paths = .*/bin/sh=' ||
  sandbox_paths="$sandbox_paths /bin/sh=/usr/bin/dash"
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters =\nflake-registry =\nwarn-dirty = false\n'"extra-sandbox-paths = $sandbox_paths"
export EXT_SOURCE="path:$root/test/fixtures"
ext() { node "$root/bin/ext.js" "$@"; }
export -f ext
export root

if [ "$(id -u)" -ne 0 ]; then echo "the demo merges extensions in a private mount namespace: run it as root" >&2; exit 1; fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== ext build (no root, no state): ripgrep jq greet → $out/ext.raw"
ext build ripgrep jq greet -o "$out/ext.raw"

unshare -m --propagation private bash -euo pipefail -c '
  mount --make-rshared /
  mount -t tmpfs tmpfs /run
  mount -t tmpfs -o mode=755 tmpfs /var/lib      # one file system: images are hard-linked into /var/lib/extensions
  hidden() { unshare -m sh -c "mount -t tmpfs tmpfs /nix; exec \"\$@\"" sh "$@"; }
  step() { echo; echo "== $*"; }
  step ext add ripgrep jq greet;       ext add ripgrep jq greet
  step "tools run from /usr/bin with /nix hidden"
  hidden /usr/bin/rg --version | sed -n 1p
  hidden /usr/bin/jq --version
  hidden /usr/bin/greet
  step ext remove jq;                  ext remove jq
  test ! -e /usr/bin/jq && echo "/usr/bin/jq is gone"; hidden /usr/bin/rg --version | sed -n 1p
  step ext rollback;                   ext rollback
  hidden /usr/bin/jq --version
  step ext generations;                ext generations
  step ext list;                       ext list
  step ext status;                     ext status
  systemd-sysext unmerge >/dev/null
'
