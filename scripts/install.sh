#!/usr/bin/env bash
# Puts this clone's ext on PATH, or takes it off again.
#
#   sudo bash scripts/install.sh               /usr/local/bin/ext → <clone>/bin/ext.js
#                                              /usr/local/share/man/man1/ext.1 → <clone>/dist/ext.1
#   PREFIX=~/.local bash scripts/install.sh    ~/.local/bin/ext (and its man page), without root
#   sudo bash scripts/install.sh --uninstall   removes those links (only links into this clone)
#
# A symbolic link, not a copy: `git pull && npm run build` updates the installed ext. ext runs the
# bundle in dist/bundle (npm run build makes it) and needs Node.js ≥ 20 on PATH, nothing else of the
# clone's node_modules. `npm link` does the same through npm's own prefix (package.json "man" links
# the page there too). man-db finds PREFIX/share/man for a PREFIX/bin on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
clone=$(pwd)
PREFIX=${PREFIX:-/usr/local}
bin="$PREFIX/bin"
link="$bin/ext"
target="$clone/bin/ext.js"
man_link="$PREFIX/share/man/man1/ext.1"
man_target="$clone/dist/ext.1"

say() { echo "install: $*"; }
die() { echo "install: $*" >&2; exit 1; }

case "${1:-}" in
  --uninstall|-u)
    if [ ! -e "$link" ] && [ ! -L "$link" ]; then say "$link is not there: nothing to remove"; exit 0; fi
    [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ] || die "$link is not a link to $target; leaving it alone"
    rm "$link"
    say "removed $link"
    if [ -L "$man_link" ] && [ "$(readlink "$man_link")" = "$man_target" ]; then rm "$man_link"; say "removed $man_link"; fi
    say "ext's state on this host (/var/lib/ext, /var/lib/extensions/ext.raw, boot units) is not touched: 'sudo ext remove …' or 'sudo ext setup --remove' before uninstalling if you want it gone"
    exit 0 ;;
  "") ;;
  *) echo "usage: bash scripts/install.sh [--uninstall]   (PREFIX=DIR: DIR/bin/ext; default /usr/local)" >&2; exit 2 ;;
esac

command -v node >/dev/null 2>&1 || die "Node.js is not on PATH (ext needs Node.js ≥ 20; bash scripts/setup.sh checks it)"
if [ ! -e dist/bundle/main.js ] || [ ! -e dist/ext.1 ]; then
  say "building ext (npm run build)"
  npm run build --silent
fi
if [ -e "$link" ] || [ -L "$link" ]; then
  [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ] || die "$link exists and is not this clone's ext; remove it first"
  say "$link already links to $target"
else
  mkdir -p "$bin"
  ln -s "$target" "$link"
  say "$link → $target"
fi
# The man page, unless another ext's is there.
if [ -L "$man_link" ] && [ "$(readlink "$man_link")" = "$man_target" ]; then :
elif [ -e "$man_link" ] || [ -L "$man_link" ]; then say "note: $man_link exists and is not this clone's; leaving it alone"
else
  mkdir -p "$(dirname "$man_link")"
  ln -s "$man_target" "$man_link"
  say "$man_link → $man_target (man ext)"
fi
case ":$PATH:" in
  *":$bin:"*) ;;
  *) say "note: $bin is not on PATH; add it (e.g. in ~/.profile: PATH=\"$bin:\$PATH\")" ;;
esac
say "shell completion: source <(ext completion bash)   (zsh, fish: see 'ext completion --help')"
