import type { Namespace } from "./namespace.js";

// An EROFS image's tree as text, entry by entry: path, type, mode, owner, mtime, size, link target,
// content hash and extended attributes. Two images with equal listings hold the same tree even when
// their bytes differ (an appended image vs a full build: src/image/append.ts). fsck.erofs --extract
// (erofs-utils ≥ 1.5) unpacks without mounting; it runs in the test's namespace, as root, so owners,
// modes and xattrs come out as stored.

export function erofsTree(ns: Namespace, image: string): string {
  const dir = `/tmp/erofs-tree-${Math.random().toString(16).slice(2)}`;
  const script = [
    `set -e; rm -rf ${dir}; mkdir -p ${dir}`,
    `fsck.erofs --extract=${dir}/t ${image} >/dev/null`,
    `cd ${dir}/t`,
    // %y type, %m mode, %U:%G owner, %T@ mtime, %s size (not for directories: it is layout), %l target
    `find . -mindepth 1 \\( -type d -printf '%P %y %m %U:%G %T@\\n' \\) -o -printf '%P %y %m %U:%G %T@ %s %l\\n' | LC_ALL=C sort`,
    `find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum`,
    `getfattr -R -h -d -m - . 2>/dev/null || true`,
    `cd /; rm -rf ${dir}`,
  ].join("\n");
  const r = ns.run(["sh", "-c", script]);
  if (r.status !== 0) throw new Error(`listing ${image} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
