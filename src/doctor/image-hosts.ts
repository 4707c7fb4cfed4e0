import { join } from "node:path";
import { imagePath } from "../base/layout.js";
import { readCurrentGeneration } from "../generations/store.js";
import { releaseFileRel } from "../image/release.js";
import type { DoctorInput, Finding } from "./types.js";

// What image-based hosts (Fedora Atomic, Bazzite, bootc/composefs systems, KDE Linux) need from
// ext doctor: how deep /usr's overlays already are, a transient /etc, an /opt that is not the
// image's, an immutable / that keeps /nix from being made, and what ID=_any means across OS
// upgrades. Each reads files under --root (so a constructed tree is a host view to test on);
// /proc/self/mountinfo is the running system's only when --root is /.

/** The kernel's FILESYSTEM_MAX_STACK_DEPTH: an overlay may sit on at most one other stacked file system. */
export const MAX_STACK_DEPTH = 2;

export interface MountEntry {
  point: string;
  fstype: string;
  source: string;
  superOptions: string;
}

/** /proc/self/mountinfo, one mount a line (proc(5)): `id parent maj:min root point opts [tags] - type source superopts`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 6 || f.length < dash + 3) continue;
    out.push({ point: unescapeOctal(f[4]!), fstype: f[dash + 1]!, source: unescapeOctal(f[dash + 2]!), superOptions: f[dash + 3] ?? "" });
  }
  return out;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount that holds `path` (the last of those with the longest mount point), systemd-sysext's
 *  own overlays left out: what matters is the /usr below them, which a refresh stacks on again. */
function mountOf(mounts: MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    if (m.source === "sysext") continue;
    const inside = m.point === "/" || path === m.point || path.startsWith(`${m.point}/`);
    if (inside && (best === undefined || m.point.length >= best.point.length)) best = m;
  }
  return best;
}

/** How many stacked file systems (overlays) are under `path`: 0 for a plain file system. A lower
 *  layer is looked up among the mounts made before the overlay (`lowerdir=/usr` of an overlay on
 *  /usr is the /usr it covers). */
export function stackDepth(mounts: MountEntry[], path: string, limit = 4): number {
  const m = mountOf(mounts, path);
  if (!m || m.fstype !== "overlay" || limit === 0) return 0;
  const before = mounts.slice(0, mounts.lastIndexOf(m));
  const lowers = /(?:^|,)lowerdir=([^,]*)/.exec(m.superOptions)?.[1]?.split(":").filter((p) => p.length > 0) ?? [];
  return 1 + Math.max(0, ...lowers.map((p) => stackDepth(before, p, limit - 1)));
}

/** ostree's prepare-root.conf (the image's, then /etc's): `[section] key = value`. */
export function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const s = /^\[(.+)\]$/.exec(line);
    if (s) section = s[1]!.trim();
    else {
      const kv = /^([^=]+)=(.*)$/.exec(line);
      if (kv) (out[section] ??= {})[kv[1]!.trim()] = kv[2]!.trim();
    }
  }
  return out;
}

const yes = (v: string | undefined) => v !== undefined && /^(1|yes|true|on|signed|verity|maybe)$/i.test(v);

interface OstreeView {
  ostree: boolean;
  bootc: boolean;
  composefs: string | undefined;
  etcTransient: boolean;
  rootTransient: boolean;
}

async function ostreeView(input: DoctorInput): Promise<OstreeView> {
  const { host, layout } = input;
  const conf: Record<string, Record<string, string>> = {};
  for (const file of ["usr/lib/ostree/prepare-root.conf", "etc/ostree/prepare-root.conf"]) {
    const text = await host.readText(join(layout.root, file));
    if (text === undefined) continue;
    for (const [section, kv] of Object.entries(parseIni(text))) conf[section] = { ...conf[section], ...kv };
  }
  return {
    ostree: (await host.exists(join(layout.root, "run/ostree-booted"))) || (await host.exists(join(layout.root, "ostree"))) || Object.keys(conf).length > 0,
    bootc: await host.exists(join(layout.root, "usr/bin/bootc")),
    composefs: conf["composefs"]?.["enabled"],
    etcTransient: yes(conf["etc"]?.["transient"]),
    rootTransient: yes(conf["root"]?.["transient"]),
  };
}

/** composefs/bootc hosts: systemd-sysext's overlay goes on a /usr that may already be stacked. */
export async function checkOverlayDepth(input: DoctorInput): Promise<Finding[]> {
  const { host, layout } = input;
  const view = await ostreeView(input);
  const kind = view.bootc ? "a bootc host" : view.ostree ? "an ostree host" : "this host";
  const text = await host.readText(layout.root === "/" ? "/proc/self/mountinfo" : join(layout.root, "proc/self/mountinfo"));
  if (text === undefined) {
    return [{ check: "overlay-depth", status: "ok", message: `cannot see how /usr is mounted${layout.root === "/" ? "" : ` under ${layout.root}`}; not checked`, fix: null }];
  }
  // The mount table of the system whose root is layout.root: its /usr.
  const mounts = parseMountinfo(text);
  const depth = stackDepth(mounts, "/usr");
  const under = mountOf(mounts, "/usr");
  const details = { depth, mount: under ?? null, composefs: view.composefs ?? null, limit: MAX_STACK_DEPTH };
  if (depth + 1 > MAX_STACK_DEPTH) {
    return [{
      check: "overlay-depth",
      status: "error",
      message: `/usr is already ${depth} stacked file systems deep (${under?.fstype} on ${under?.point}, over ${view.composefs ? "composefs" : "another overlay"}); systemd-sysext's overlay would be level ${depth + 1}, and the kernel stacks at most ${MAX_STACK_DEPTH}: merging fails ("maximum fs stacking depth exceeded")`,
      fix: view.ostree ? "reboot to drop the transient /usr overlay ('bootc usr-overlay' / 'rpm-ostree usroverlay' / 'ostree admin unlock'), then merge" : "merge onto a /usr that is not itself a stack of overlays",
      details,
    }];
  }
  if (depth === 1) {
    return [{
      check: "overlay-depth",
      status: "info",
      message: `/usr is on ${view.composefs ? "composefs (an overlay over EROFS)" : "an overlay"} on ${kind}: systemd-sysext's overlay is the second and last level the kernel allows (${MAX_STACK_DEPTH}), so nothing else may be stacked on /usr ('bootc usr-overlay', 'rpm-ostree usroverlay' make merging fail until the next boot)`,
      fix: null,
      details,
    }];
  }
  return [{ check: "overlay-depth", status: "ok", message: `/usr is on ${under?.fstype ?? "a plain file system"}: systemd-sysext's overlay is the only stacked level`, fix: null, details }];
}

/** A transient /etc (ostree prepare-root.conf `[etc] transient`) loses ext setup's units at reboot. */
export async function checkTransientEtc(input: DoctorInput): Promise<Finding[]> {
  const view = await ostreeView(input);
  const findings: Finding[] = [];
  if (view.etcTransient) {
    findings.push({
      check: "etc-transient",
      status: "warning",
      message: "/etc is transient here (prepare-root.conf: [etc] transient = true): it is made anew from the image at every boot, so the boot units 'ext setup' writes to /etc/systemd/system (and /etc/ext/boot.sh) are gone after the next reboot — the current generation is still merged (it is in /var/lib/extensions), but a failing one is no longer reverted",
      fix: "ship the units in the OS image (its /usr/lib/systemd/system, with /etc/ext/boot.sh as the image's), or run 'ext setup' again after every boot",
    });
  }
  if (view.rootTransient) {
    findings.push({
      check: "etc-transient",
      status: "info",
      message: "/ is transient here (prepare-root.conf: [root] transient = true): a /nix made on it is gone at reboot; ext's private store under /var/lib/ext/nix stays",
      fix: null,
    });
  }
  if (findings.length === 0) findings.push({ check: "etc-transient", status: "ok", message: "/etc persists across boots (ext setup's units stay)", fix: null });
  return findings;
}

/** Fedora Atomic desktops make /opt a symlink to var/opt: it is not the image's, and systemd-sysext
 *  does not merge /opt there as it does where /opt is part of the OS tree. ext's images hold only /usr. */
export async function checkOpt(input: DoctorInput): Promise<Finding[]> {
  const s = await input.host.stat(join(input.layout.root, "opt"));
  if (s?.isSymlink) {
    const target = await input.host.readLink(join(input.layout.root, "opt"));
    return [{
      check: "opt",
      status: "info",
      message: `/opt is a symlink${target ? ` to ${target}` : ""} (as on Fedora Atomic desktops): it is mutable state, not part of the OS image, and system extensions' /opt is not merged there; ext's images put everything under /usr, so packages installed by ext are not affected — other extensions' /opt files will not appear`,
      fix: null,
      details: { target: target ?? null },
    }];
  }
  return [{ check: "opt", status: "ok", message: s?.isDirectory ? "/opt is a directory of the OS tree" : "there is no /opt (ext's images use only /usr)", fix: null }];
}

/** An immutable / (chattr +i, as ostree sets it) keeps Nix from making /nix: no system store. */
export async function checkImmutableRoot(input: DoctorInput): Promise<Finding[]> {
  const { host, layout } = input;
  if (await host.exists(join(layout.root, "nix"))) {
    return [{ check: "root-immutable", status: "ok", message: "/nix exists", fix: null }];
  }
  const attrs = await host.fileAttributes(layout.root);
  if (attrs === undefined) {
    return [{ check: "root-immutable", status: "ok", message: `cannot read the attributes of ${layout.root} (lsattr); not checked`, fix: null }];
  }
  if (!attrs.includes("i")) {
    return [{ check: "root-immutable", status: "ok", message: `${layout.root} is not immutable: /nix can be made there`, fix: null, details: { attributes: attrs } }];
  }
  // Only the running system's own / decides where this ext's Nix builds; under --root it is news
  // about the target, whose ext will choose its private store there.
  const privateStore = input.nix.store.root !== "/";
  const broken = !privateStore && layout.root === "/";
  const consequence = privateStore
    ? `; ext keeps its packages in its private store ${join(input.nix.store.root, "nix/store")}`
    : broken ? ", and --store system cannot work" : "; ext run on that system keeps its packages in its private store (--store auto)";
  return [{
    check: "root-immutable",
    status: broken ? "warning" : "info",
    message: `${layout.root} is immutable (chattr +i, as ostree sets it): /nix cannot be created, not even by root, so there is no system Nix store${consequence}`,
    fix: broken ? "use ext's private store (--store auto, the default, picks it here), or a Nix installer that makes /nix for such hosts (a mount unit from /var)" : null,
    details: { attributes: attrs },
  }];
}

/** ext's images declare ID=_any: merged whatever the OS and its version, so an OS upgrade keeps them;
 *  only ARCHITECTURE binds them. What that means for the active image. */
export async function checkOsUpgrades(input: DoctorInput): Promise<Finding[]> {
  const { host, layout, extensionName } = input;
  const current = await readCurrentGeneration(layout).catch(() => null);
  if (!current?.image) {
    return [{ check: "os-upgrades", status: "ok", message: "no active image: nothing for OS upgrades to keep or drop", fix: null }];
  }
  const release = await host.imageText(imagePath(layout, current.image.sha256), releaseFileRel(current.extensionName ?? extensionName));
  const os = parseOsRelease((await host.readText(join(layout.root, "etc/os-release"))) ?? (await host.readText(join(layout.root, "usr/lib/os-release"))) ?? "");
  const fields = parseOsRelease(release ?? "");
  const details = { extensionRelease: release === undefined ? null : fields, os: { ID: os["ID"] ?? null, VERSION_ID: os["VERSION_ID"] ?? null } };
  const osName = os["PRETTY_NAME"] ?? os["NAME"] ?? os["ID"] ?? "this OS";
  if (release === undefined) {
    return [{ check: "os-upgrades", status: "warning", message: `the active image (generation ${current.id}) has no readable ${releaseFileRel(current.extensionName ?? extensionName)}`, fix: "make the generation anew: 'sudo ext apply' or 'sudo ext add' of a package", details }];
  }
  if (fields["ID"] !== "_any") {
    return [{
      check: "os-upgrades",
      status: "warning",
      message: `the active image declares ID=${fields["ID"] ?? "(none)"}${fields["VERSION_ID"] ? ` VERSION_ID=${fields["VERSION_ID"]}` : ""}, not ID=_any: systemd-sysext stops merging it when the OS changes its ID or version`,
      fix: "make the generation anew with this ext (its images are ID=_any)",
      details,
    }];
  }
  const arch = input.architecture;
  if (arch !== undefined && fields["ARCHITECTURE"] !== undefined && fields["ARCHITECTURE"] !== arch) {
    return [{
      check: "os-upgrades",
      status: "error",
      message: `the active image is for ARCHITECTURE=${fields["ARCHITECTURE"]}, this machine is ${arch}: systemd-sysext does not merge it`,
      fix: "build the generation on this machine ('sudo ext apply')",
      details,
    }];
  }
  return [{
    check: "os-upgrades",
    status: "info",
    message: `ext's image declares ID=_any (ARCHITECTURE=${fields["ARCHITECTURE"] ?? "any"}): systemd-sysext merges it on ${osName} and after any OS upgrade or rebase, since a Nix closure brings its own libraries; what an upgrade can change is the host's /usr under it — a command the new OS adds at a path ext also links is shadowed by ext's, unseen (ext checks shadowing only when it makes a generation)`,
    fix: "after an OS upgrade, the next generation (ext add, remove or upgrade) checks the set against the new /usr",
    details,
  }];
}

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}
