#!/usr/bin/env bash
# Downloads the .debs listed in bench/debs.txt with `apt-get download` and extracts each one with
# `dpkg-deb -x` into /var/cache/ext-bench/debs/<package>/, where the benchmark fixtures
# (bench/fixtures/packages.nix) copy their files from. Nothing is installed: the host's own git, vim,
# python3 or perl (if any) are neither needed nor touched.
#
# Run as root after `apt-get update` (scripts/setup.sh does that); `npm run bench` runs this script
# itself. Incremental: a package whose candidate version is already extracted (<package>/.version) is
# not downloaded again.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")"
LIST=debs.txt
ROOT=${EXT_BENCH_DEBS:-/var/cache/ext-bench/debs}

die() { echo "bench/fetch-debs: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it writes $ROOT)"
for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (a Debian host is required)"
done

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
[ "${#packages[@]}" -gt 0 ] || die "$LIST lists no packages"

# Candidate versions, all in one apt-cache call.
declare -A want=()
current=""
while IFS= read -r line; do
  case "$line" in
    [!\ ]*:) current=${line%:} ;;
    "  Candidate: "*) want[$current]=${line#  Candidate: } ;;
  esac
done < <(apt-cache policy "${packages[@]}")
missing=()
for p in "${packages[@]}"; do
  v=${want[$p]:-}
  if [ -z "$v" ] || [ "$v" = "(none)" ]; then
    die "no installable version of '$p' is known to apt; run 'apt-get update' first"
  fi
  if [ "$(cat "$ROOT/$p/.version" 2>/dev/null || true)" != "$v" ]; then missing+=("$p=$v"); fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench/fetch-debs: $ROOT is up to date (${#packages[@]} packages)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
echo "bench/fetch-debs: downloading ${#missing[@]} packages"
(cd "$tmp" && apt-get download -q "${missing[@]}") >/dev/null ||
  die "apt-get download failed (stale package lists? run 'apt-get update')"

umask 022
mkdir -p "$ROOT"
for deb in "$tmp"/*.deb; do
  [ -e "$deb" ] || continue
  pkg=$(dpkg-deb -f "$deb" Package)
  ver=$(dpkg-deb -f "$deb" Version)
  [ "${want[$pkg]:-}" = "$ver" ] || die "unexpected download $deb ($pkg $ver)"
  rm -rf "$ROOT/$pkg.new" "$ROOT/$pkg"
  mkdir -m 0755 "$ROOT/$pkg.new"
  dpkg-deb -x "$deb" "$ROOT/$pkg.new"
  printf '%s\n' "$ver" >"$ROOT/$pkg.new/.version"
  mv "$ROOT/$pkg.new" "$ROOT/$pkg"
done
for p in "${packages[@]}"; do
  [ "$(cat "$ROOT/$p/.version" 2>/dev/null || true)" = "${want[$p]}" ] || die "$p was not extracted"
done
echo "bench/fetch-debs: extracted ${#missing[@]} packages into $ROOT ($(du -sh "$ROOT" | cut -f1) in all)"
