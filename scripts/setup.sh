#!/usr/bin/env bash
# Installs what ext, its demo and its tests need on a fresh Debian 12 (as root), then the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -q
# erofs-utils: mkfs.erofs; nix-bin: Nix 2.8; nix-setup-systemd: its build users (group nixbld) and
# Debian's nix.conf, as a Debian user installs Nix (without them Nix 2.8 as root stops: "the group
# 'nixbld' specified in 'build-users-group' does not exist"); systemd: systemd-sysext; util-linux: unshare/nsenter;
# squashfs-tools and valgrind: the benchmark; mmdebstrap and systemd-container: the real-boot test
# (a Debian 12 tree booted by systemd-nspawn); zsh and fish: the completion tests; the rest: what the fixture packages are made of.
# shellcheck disable=SC2046
$SUDO apt-get install -y -q --no-install-recommends \
  erofs-utils nix-bin nix-setup-systemd patchelf systemd util-linux file xz-utils zstd squashfs-tools valgrind \
  mmdebstrap systemd-container zsh fish attr \
  $(grep -v '^#' .ci/fixture-deps.txt)
# The fixtures' ripgrep, jq and hello come from .debs extracted into /var/cache/ext-fixtures/root
# (.ci/fixture-debs.txt), never installed: ext refuses an image that shadows the host's /usr/bin/rg.
# The same programs installed from Debian would be shadowed by the fixtures' images, which ext rightly
# refuses (and the fixtures' own test checks): remove them, saying so. Some machine images ship jq.
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' ripgrep jq hello 2>/dev/null | awk '$1 == "ii" { print $2 }' || true)
if [ -n "$installed" ]; then
  echo "setup: removing the Debian packages $installed: the test fixtures provide these programs, and ext refuses to shadow a host's /usr/bin" >&2
  # shellcheck disable=SC2086
  $SUDO apt-get remove -y -q $installed
fi
$SUDO bash scripts/fetch-fixture-debs.sh
# A real SELinux policy's file_contexts for the label tests, in a tree of its own (scripts/selinux-policy.sh).
$SUDO bash scripts/selinux-policy.sh >/dev/null
npm ci --no-audit --no-fund
