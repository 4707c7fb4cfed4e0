#!/usr/bin/env bash
# Downloads the .debs listed in .ci/fixture-debs.txt (ripgrep, jq, hello and their libraries) with
# `apt-get download` and extracts them with `dpkg-deb -x` into /var/cache/ext-fixtures/root, where the
# test fixtures (test/fixtures/packages.nix) copy their binaries from.
#
# Why not just install them: ext refuses an image that would shadow a file of the host's /usr, so a
# host with /usr/bin/rg refuses `ext add ripgrep`. These packages must NOT be installed on a test host.
#
# Run as root after `apt-get update` (scripts/setup.sh does both); re-runs itself with sudo otherwise.
# Idempotent: does nothing when the tree was already extracted from the same package versions
# (the stamp file /var/cache/ext-fixtures/stamp lists package=version).
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
LIST=.ci/fixture-debs.txt
CACHE=/var/cache/ext-fixtures
ROOT=$CACHE/root
STAMP=$CACHE/stamp

die() { echo "fetch-fixture-debs: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root (it writes $CACHE)"
  exec sudo bash "$0" "$@"
fi
for tool in apt-get apt-cache dpkg-deb dpkg; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (a Debian host is required)"
done
[ -r "$LIST" ] || die "$LIST not found"

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
[ "${#packages[@]}" -gt 0 ] || die "$LIST lists no packages"

# The candidate version of each package: what `apt-get download` fetches, pinned so the stamp is exact.
arch=$(dpkg --print-architecture)
want="# ext fixture debs, architecture $arch"$'\n'
for p in "${packages[@]}"; do
  v=$(apt-cache policy "$p" | awk '$1 == "Candidate:" { print $2; exit }')
  if [ -z "$v" ] || [ "$v" = "(none)" ]; then
    die "no installable version of '$p' is known to apt; run 'apt-get update' first"
  fi
  want+="$p=$v"$'\n'
done

if [ -d "$ROOT" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")"$'\n' = "$want" ]; then
  echo "fetch-fixture-debs: $ROOT is up to date ($(grep -vc '^#' "$STAMP") packages)"
else
  tmp=$(mktemp -d)
  stage=$CACHE/root.new.$$
  trap 'rm -rf "$tmp" "$stage"' EXIT
  # apt drops privileges to _apt for downloads; let it write the download directory.
  if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi

  pins=()
  while IFS='=' read -r p v; do
    case "$p" in '#'* | '') continue ;; esac
    pins+=("$p=$v")
  done <<<"$want"
  echo "fetch-fixture-debs: downloading ${pins[*]}"
  (cd "$tmp" && apt-get download -q "${pins[@]}") ||
    die "apt-get download failed (stale package lists? run 'apt-get update')"

  umask 022
  mkdir -p "$CACHE"
  rm -rf "$stage"
  mkdir -m 0755 "$stage"
  got=0
  for deb in "$tmp"/*.deb; do
    [ -e "$deb" ] || continue
    pkg=$(dpkg-deb -f "$deb" Package)
    ver=$(dpkg-deb -f "$deb" Version)
    grep -qxF "$pkg=$ver" <<<"$want" || die "unexpected download $deb ($pkg $ver)"
    dpkg-deb -x "$deb" "$stage"
    got=$((got + 1))
  done
  [ "$got" -eq "${#packages[@]}" ] || die "expected ${#packages[@]} .debs, got $got"

  rm -rf "$ROOT"
  mv "$stage" "$ROOT"
  printf '%s' "$want" >"$STAMP.new"
  mv "$STAMP.new" "$STAMP"
  echo "fetch-fixture-debs: extracted $got packages into $ROOT"
fi

# These packages must stay off the host: an image providing /usr/bin/rg would shadow the host's.
installed=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ]; then installed+=("$p"); fi
done
if [ "${#installed[@]}" -gt 0 ]; then
  echo "fetch-fixture-debs: WARNING: ${installed[*]} installed on this host; ext will refuse to shadow" \
    "their files in /usr and the end-to-end tests fail. Remove them: apt-get remove -y ${installed[*]}" >&2
fi
