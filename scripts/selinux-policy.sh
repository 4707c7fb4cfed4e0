#!/usr/bin/env bash
# selinux-policy.sh: a real SELinux policy for the tests — Debian's selinux-policy-default, installed
# into a tree of its own (its postinst compiles the policy and writes contexts/files/file_contexts,
# which the .deb does not ship), never on the host: installed there it would switch the host's
# /etc/selinux/config to SELINUX=permissive. Cached in /var/cache/ext-selinux. Prints file_contexts.
set -euo pipefail
tree=/var/cache/ext-selinux/bookworm
fc=$tree/etc/selinux/default/contexts/files/file_contexts
if [ ! -s "$fc" ]; then
  mkdir -p /var/cache/ext-selinux
  rm -rf "$tree.new"
  mmdebstrap --quiet --variant=minbase --include=selinux-policy-default \
    --aptopt='APT::Install-Recommends "false"' bookworm "$tree.new" http://deb.debian.org/debian >&2
  [ -s "$tree.new/etc/selinux/default/contexts/files/file_contexts" ] || { echo "selinux-policy-default wrote no file_contexts" >&2; exit 1; }
  rm -rf "$tree"
  mv "$tree.new" "$tree"
fi
echo "$fc"
