#!/usr/bin/env bash
# Downloads the .debs listed in .ci/fixture-debs.txt (ripgrep, jq, hello and their libraries) with
# `apt-get download` and extracts them with `dpkg-deb -x` into /var/cache/ext-fixtures/root, where the
# test fixtures (test/fixtures/packages.nix) copy their binaries from; and the upstream sources of
# .ci/fixture-sources.txt (CPython, git) into /var/cache/ext-fixtures/src, which
# test/fixtures/compiled.nix compiles.
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

# The upstream sources of the compiled fixtures (.ci/fixture-sources.txt): Debian 12's .orig tarballs,
# fetched with apt-get source from a deb-src list of this script's own under $CACHE/apt (the host's
# /etc/apt stays as it is). Only the .orig is kept; its sha256 is checked. Debian 12's only: the
# fixtures are compiled once, on the Debian 12 host, and the trees of scripts/test-hosts.sh reuse them.
SOURCES=.ci/fixture-sources.txt
SRC=$CACHE/src
BUILT=$CACHE/built
need_sources=()
while read -r spkg file sha; do
  case "$spkg" in '#'* | '') continue ;; esac
  if ! { [ -f "$SRC/$file" ] && echo "$sha  $SRC/$file" | sha256sum -c --quiet - >/dev/null 2>&1; }; then
    need_sources+=("$spkg:$file:$sha")
  fi
done <"$SOURCES"
if [ "${#need_sources[@]}" -eq 0 ]; then
  echo "fetch-fixture-debs: $SRC is up to date ($(grep -vc '^#' "$SOURCES") sources)"
else
  apt_dir=$CACHE/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$SRC"
  # The host's Debian mirror (deb.debian.org when none is found).
  mirror=$({ grep -rhoE 'https?://[^ ]*/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } | head -1 | tr -d ' ')
  mirror=${mirror:-http://deb.debian.org/debian}
  # The .orig is the same in every Debian revision of these versions, and bookworm's main pool
  # keeps it: no security or updates suite needed.
  printf 'deb-src %s bookworm main\n' "${mirror%/}" >"$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
  apt-get "${apt_opts[@]}" update -q >/dev/null || die "apt-get update of the deb-src list $apt_dir/sources.list failed"
  dl=$(mktemp -d)
  if id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
  for entry in "${need_sources[@]}"; do
    IFS=: read -r spkg file sha <<<"$entry"
    echo "fetch-fixture-debs: downloading the source package $spkg for $file"
    (cd "$dl" && apt-get "${apt_opts[@]}" source --download-only -q "$spkg" >/dev/null) ||
      die "apt-get source --download-only $spkg failed"
    [ -f "$dl/$file" ] || die "apt-get source $spkg did not bring $file (Debian moved to another upstream version?); got: $(ls "$dl" | tr '\n' ' ')"
    echo "$sha  $dl/$file" | sha256sum -c --quiet - || die "$file does not have the sha256 pinned in $SOURCES"
    mv "$dl/$file" "$SRC/$file.new" && mv "$SRC/$file.new" "$SRC/$file"
  done
  rm -rf "$dl"
fi
# Where the compiled fixtures keep their built tars: written by Nix's build users (group nixbld).
mkdir -p "$BUILT"
if getent group nixbld >/dev/null 2>&1; then chgrp nixbld "$BUILT" && chmod 1775 "$BUILT"; fi

# These packages must stay off the host: an image providing /usr/bin/rg would shadow the host's.
installed=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ]; then installed+=("$p"); fi
done
if [ "${#installed[@]}" -gt 0 ]; then
  echo "fetch-fixture-debs: WARNING: ${installed[*]} installed on this host; ext will refuse to shadow" \
    "their files in /usr and the end-to-end tests fail. Remove them: apt-get remove -y ${installed[*]}" >&2
fi
