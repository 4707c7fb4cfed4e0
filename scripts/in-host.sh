#!/usr/bin/env bash
# in-host.sh SUITE COMMAND…: runs COMMAND as root inside the host-matrix tree of Debian SUITE
# (scripts/host-tree.sh), with the tree as the root of a private mount namespace (pivot_root, not a
# bare chroot: Nix's sandbox and systemd-sysext need namespaces, which the kernel refuses to a
# chrooted process). Nothing is written to the cached tree or to the host:
#   - this repository, /var/cache/ext-fixtures, /var/cache/ext-selinux and /var/cache/ext-bench (the
#     bench's extracted .debs) are bind-mounted at the same paths;
#   - /nix is a fresh tmpfs (mode 755): Nix is installed but has never run, as on a new machine;
#   - /tmp, /run, /root and /var/lib (a copy of the tree's) are tmpfs; /dev, /proc and /sys as on the host.
# It has its own PID namespace too: Nix kills every process of a build user before it builds as that
# user, and the tree's nixbld users have the host's uids, so without it a build in the tree and one on
# the host (another test run) kill each other's builders ("failed due to signal 9").
# Everything ends with the namespace.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
suite=${1:?usage: in-host.sh SUITE COMMAND…}
shift
tree=$(bash "$here/scripts/host-tree.sh" "$suite")
exec unshare -m -p --fork --propagation private -- /bin/sh -eu -c '
  tree=$1 repo=$2; shift 2
  mount --bind "$tree" "$tree"
  mount --make-private "$tree"
  mount -t tmpfs -o mode=755 tmpfs "$tree/nix"
  for d in /tmp /run /root; do mkdir -p "$tree$d"; done
  mount -t tmpfs -o mode=1777 tmpfs "$tree/tmp"
  for d in /run /root; do mount -t tmpfs -o mode=755 tmpfs "$tree$d"; done
  # /var/lib as one tmpfs holding a copy of the tree'"'"'s: ext hard-links images from /var/lib/ext into
  # /var/lib/extensions, which needs one file system (and one mount).
  cp -a "$tree/var/lib" "$tree/tmp/.var-lib"
  mount -t tmpfs -o mode=755 tmpfs "$tree/var/lib"
  cp -a "$tree/tmp/.var-lib/." "$tree/var/lib/"
  rm -rf "$tree/tmp/.var-lib"
  mkdir -p "$tree/var/lib/ext" "$tree/var/lib/extensions"
  # The binds last, so that a repository below /tmp or /root (a CI clone) is not hidden by their tmpfs.
  # A git worktree whose node_modules is a symlink into the main checkout: that directory too.
  modules=$(readlink -f "$repo/node_modules" 2>/dev/null || true)
  case $modules in "$repo"/*|"") modules= ;; esac
  for d in "$repo" $modules /var/cache/ext-fixtures /var/cache/ext-selinux /var/cache/ext-bench; do [ -d "$d" ] || continue; mkdir -p "$tree$d"; mount --bind "$d" "$tree$d"; done
  mount --rbind /dev "$tree/dev"
  mount -t proc proc "$tree/proc"
  mount --rbind /sys "$tree/sys"
  cd "$tree"
  mkdir -p .host-root
  pivot_root . .host-root
  exec /usr/sbin/chroot . /bin/sh -c "umount -l /.host-root && rmdir /.host-root 2>/dev/null; cd \"\$0\" && exec \"\$@\"" "$repo" "$@"
' sh "$tree" "$here" "$@"
