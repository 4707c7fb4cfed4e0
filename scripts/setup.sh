#!/usr/bin/env bash
# Installs what ext, its demo and its tests need on a fresh Debian 12 (as root), then the npm packages.
#
#   bash scripts/setup.sh             say what changes on the host, then do it
#   bash scripts/setup.sh --dry-run   only say it (and check Node.js); change nothing
#
# It waits for another apt (an unattended upgrade, a second setup) instead of failing on its lock.
# Sourced (the tests do), it only defines its functions.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

NODE_MAJOR=20
# How long to wait for another apt or dpkg to let go of its lock (seconds).
APT_LOCK_WAIT=${EXT_SETUP_APT_LOCK_WAIT:-600}

# erofs-utils: mkfs.erofs; nix-bin: Nix 2.8; nix-setup-systemd: its build users (group nixbld) and
# Debian's nix.conf, as a Debian user installs Nix (without them Nix 2.8 as root stops: "the group
# 'nixbld' specified in 'build-users-group' does not exist"); systemd: systemd-sysext; util-linux:
# unshare/nsenter; squashfs-tools and valgrind: the benchmark; mmdebstrap and systemd-container: the
# real-boot test (a Debian 12 tree booted by systemd-nspawn); zsh and fish: the completion tests;
# attr: getfattr for the SELinux label tests; tmux: the terminal walk-through test; man-db (and its
# groff-base): the man page tests; librsvg2-bin: scripts/screenshots.mjs renders the progress display
# to PNG; sudo and openssl (a password hash): the normal-user elevation test; e2fsprogs: mkfs.ext4,
# chattr and lsattr for the immutable-root doctor test (and ext doctor's lsattr); faketime: a fleet
# machine whose own clock is wrong (fleet.test.ts); the rest: what the fixture packages are made of.
PACKAGES=(erofs-utils nix-bin nix-setup-systemd patchelf systemd util-linux file xz-utils zstd squashfs-tools
  valgrind mmdebstrap systemd-container zsh fish attr tmux man-db librsvg2-bin sudo openssl e2fsprogs faketime)
# The programs the fixtures provide: installed from Debian they would be shadowed by the fixtures'
# images, which ext rightly refuses (and the fixtures' own test checks). Some machine images ship jq.
FIXTURE_PROGRAMS=(ripgrep jq hello)

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

say() { echo "setup: $*"; }

# apt-get that waits for another apt instead of failing at once. DPkg::Lock::Timeout covers dpkg's
# lock (install); apt-get update takes the package lists' lock, which that option does not cover
# (apt 2.6 stops with "Could not get lock /var/lib/apt/lists/lock"), so a held lock is also retried.
apt_get() {
  local deadline=$((SECONDS + APT_LOCK_WAIT)) err status
  err=$(mktemp)
  while :; do
    status=0
    $SUDO apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_WAIT" "$@" 2>"$err" || status=$?
    if [ "$status" -ne 0 ] && grep -q "Could not get lock" "$err" && [ "$SECONDS" -lt "$deadline" ]; then
      say "waiting for another apt to finish ($(grep -o 'held by process [0-9]* ([^)]*)' "$err" | head -1 || true))…"
      sleep 5
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return "$status"
  done
}

node_major() {
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

main() {
  local DRY_RUN=0
  case "${1:-}" in
    --dry-run|-n) DRY_RUN=1 ;;
    "") ;;
    *) echo "usage: bash scripts/setup.sh [--dry-run]" >&2; exit 2 ;;
  esac
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  mapfile -t -O "${#PACKAGES[@]}" PACKAGES < <(grep -hv '^#' .ci/fixture-deps.txt .ci/compile-deps.txt | grep .)

  # What this script changes, before it changes anything.
  local missing=() need_node=0 p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  command -v node >/dev/null 2>&1 || need_node=1
  say "this changes the host as follows:"
  if [ "${#missing[@]}" -gt 0 ] || [ "$need_node" -eq 1 ]; then
    say "  apt-get update, then apt-get install of the Debian packages not installed yet:"
    say "    ${missing[*]}$([ "$need_node" -eq 1 ] && echo " nodejs")"
    say "    (with what they bring: nix-setup-systemd adds /etc/nix/nix.conf, the nixbld group and users, nix-daemon)"
  else
    say "  Debian packages: all installed already (apt-get update still refreshes the package lists)"
  fi
  local installed
  installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${FIXTURE_PROGRAMS[@]}" 2>/dev/null | awk '$1 == "ii" { print $2 }' | tr '\n' ' ' || true)
  if [ -n "$installed" ]; then
    say "  apt-get remove of ${installed% }: the test fixtures provide these programs, and ext refuses to shadow a host's /usr/bin"
  fi
  say "  /var/cache/ext-fixtures: ripgrep, jq, hello and their libraries extracted from .debs (never installed),"
  say "    and the upstream sources of CPython and git from Debian's source packages (compiled by the tests' first use)"
  say "  /var/cache/ext-selinux: a Debian tree with selinux-policy-default, for the SELinux label tests (never on the host)"
  say "  $(pwd)/node_modules: npm ci"
  say "  nothing else: ext itself is not put on PATH (see the README); /var/lib/ext and /var/lib/extensions are not touched"

  if [ "$need_node" -eq 0 ] && [ "$(node_major)" -lt "$NODE_MAJOR" ]; then
    say "Node.js $(node --version) is too old: ext and its tests need Node.js ≥ $NODE_MAJOR" >&2
    say "  install Node.js $NODE_MAJOR or newer (https://nodejs.org, or NodeSource's nodejs packages for Debian) and run this again" >&2
    exit 1
  fi
  if [ "$DRY_RUN" -eq 1 ]; then
    say "--dry-run: nothing was changed"
    exit 0
  fi

  apt_get update -q
  apt_get install -y -q --no-install-recommends "${PACKAGES[@]}"
  if [ "$need_node" -eq 1 ]; then
    apt_get install -y -q --no-install-recommends nodejs npm
    if [ "$(node_major)" -lt "$NODE_MAJOR" ]; then
      say "Debian's nodejs is $(node --version); ext and its tests need Node.js ≥ $NODE_MAJOR" >&2
      say "  install Node.js $NODE_MAJOR or newer (https://nodejs.org, or NodeSource's nodejs packages for Debian) and run this again" >&2
      exit 1
    fi
  fi
  if [ -n "$installed" ]; then
    say "removing the Debian packages ${installed% } (see above)" >&2
    # shellcheck disable=SC2086
    apt_get remove -y -q $installed
  fi
  # The fixtures' ripgrep, jq and hello come from .debs extracted into /var/cache/ext-fixtures/root
  # (.ci/fixture-debs.txt), never installed: ext refuses an image that shadows the host's /usr/bin/rg.
  $SUDO bash scripts/fetch-fixture-debs.sh
  # A real SELinux policy's file_contexts for the label tests, in a tree of its own (scripts/selinux-policy.sh).
  $SUDO bash scripts/selinux-policy.sh >/dev/null
  npm ci --no-audit --no-fund
  say "done; next: npm run demo (the offline demo), npm test (the test suite)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
