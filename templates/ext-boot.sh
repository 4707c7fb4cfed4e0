#!/bin/sh
# Installed by 'ext setup --from-image' as /etc/ext/boot.sh (template: templates/ext-boot.sh in ext's
# source) for an ext that lives only in its own system extension image. The boot units run it as
#   /bin/sh /etc/ext/boot.sh [--name NAME] boot select    (before systemd-sysext.service)
#   /bin/sh /etc/ext/boot.sh [--name NAME] boot bless     (after boot-complete.target)
#
# select: nothing is merged yet, so there is no /usr/bin/ext. In a mount namespace of its own (nothing
# is seen outside it, and it all goes when the command ends) this mounts ext's image read-only, lays
# its /usr over the base /usr, and runs that ext's 'boot select' — the one decision logic (ext's
# src/boot/decide.ts), which reads and writes /var/lib/ext and /run/extensions on the real file
# systems. The image tried first is the one linked for this boot; if ext cannot run from it (the
# new generation broke ext itself), the image of the last generation that reached a good boot
# (/var/lib/ext/boot.fallback: its sha256, one line, written by ext with the boot state); if ext
# runs from neither, this boot goes without the extension (an empty /run/extensions/NAME masks
# NAME.raw), nothing persistent changes, and the unit fails so that it shows.
#
# bless: runs after the merge; /usr/bin/ext is the merged one. A boot without it (ext.disable, the
# mask above) has nothing to bless.
set -u

name=ext
prev=
for a in "$@"; do
  [ "$prev" = --name ] && name=$a
  prev=$a
done
state=/var/lib/ext
mnt=/run/ext-boot-select

say() { echo "ext-boot: $*" >&2; }

case "$*" in
  *"boot bless")
    if [ -x /usr/bin/ext ]; then exec /usr/bin/ext "$@"; fi
    say "no ext is merged this boot: nothing to bless"
    exit 0 ;;
  *"boot select") ;;
  *) say "usage: boot.sh [--name NAME] boot select|bless"; exit 2 ;;
esac

[ -d "$state" ] || { say "ext has no state on this system"; exit 0; }

# Runs ext's 'boot select' from the image $1 (a mount namespace of its own); fails if it cannot.
run_from() {
  [ -f "$1" ] || return 1
  mkdir -p "$mnt" || return 1
  image=$1
  shift
  unshare -m --propagation private /bin/sh -c '
    mnt=$1 image=$2
    shift 2
    mount -t erofs -o ro,loop "$image" "$mnt" || exit 1
    mount -t overlay overlay -o "ro,lowerdir=$mnt/usr:/usr" /usr || exit 1
    [ -x /usr/bin/ext ] || { echo "ext-boot: $image holds no /usr/bin/ext" >&2; exit 1; }
    exec /usr/bin/ext "$@"
  ' sh "$mnt" "$image" "$@"
  status=$?
  rmdir "$mnt" 2>/dev/null
  return $status
}

linked=/var/lib/extensions/$name.raw
if run_from "$linked" "$@"; then exit 0; fi
say "ext could not run from the linked image $linked"

fallback=$(head -n 1 "$state/boot.fallback" 2>/dev/null)
case "$fallback" in
  *[!0-9a-f]*|"") fallback= ;;
esac
if [ -n "$fallback" ] && [ "$state/images/$fallback.raw" -ef "$linked" ]; then fallback=; fi
if [ -n "$fallback" ]; then
  if run_from "$state/images/$fallback.raw" "$@"; then
    say "selected with the ext of the last good image $fallback"
    exit 0
  fi
  say "ext could not run from the last good image $fallback either"
fi

mkdir -p /run/extensions && rm -f "/run/extensions/$name.raw" && mkdir -p "/run/extensions/$name"
say "booting without the $name extension this time (nothing persistent changed); see 'journalctl -u ext-boot-select.service'"
exit 1
