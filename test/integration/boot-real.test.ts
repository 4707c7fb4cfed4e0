import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, copyFileSync, chmodSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { openNamespace, REPO, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";
import { Guest, type Probe } from "../helpers/guest.js";
// @ts-expect-error: a plain .mjs script (also run by hand), without type declarations
import { assemble } from "../fixtures-self/assemble.mjs";

// Issue 5, a real boot: a Debian 12 system (mmdebstrap from Debian's packages) with systemd as
// PID 1, booted as a container by systemd-nspawn. ext (the host's node and this repository,
// read-only) installs its units into it with `ext setup --root`, and two generations made by
// `ext --root … add` (real Nix builds of the fixtures, real EROFS images) go under its /var/lib/ext.
// Each boot runs ext-boot-select.service → systemd-sysext.service (real loop devices and
// overlayfs) → … → ext-boot-bless.service, then a probe unit writes what it sees to
// /root/probe.txt and powers off. The guest has no Nix.
//
// "The bless unit made to fail": a health check unit RequiredBy=boot-complete.target fails while
// /etc/ext-test-fail-boot exists, so boot-complete.target is not reached and bless does not run,
// as on a machine whose new extension set breaks a unit that must succeed.
//
// Timing on the 2-core CI machine: building the Debian tree ≈ 2 min the first time (cached as a
// tarball in $EXT_TEST_CACHE, default /var/cache/ext-test), each boot ≈ 3–5 s.

const CACHE = process.env["EXT_TEST_CACHE"] ?? "/var/cache/ext-test";
const TARBALL = join(CACHE, "debian12-systemd-rootfs.tar");
const NODE_IN_GUEST = "/usr/local/bin/node";
const EXT_IN_GUEST = "/opt/ext/bin/ext.js";

let work: string;
let guest: string;
let ns: Namespace | undefined;
let box: Guest;
let bootCount = 0;
const timings: Record<string, number> = {};

function sh(cmd: string, args: string[], opts: { timeout?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: opts.timeout ?? 600_000 });
}

function ensureRootfs(): void {
  if (existsSync(TARBALL)) return;
  mkdirSync(CACHE, { recursive: true });
  const sources = "/etc/apt/sources.list.d/debian.sources";
  const tmp = `${TARBALL}.${process.pid}.tmp.tar`;
  // The host's own Debian sources when it has them (the mirrors this machine is set up for).
  sh("mmdebstrap", ["--quiet", "--variant=minbase", "--include=systemd,systemd-sysv", "bookworm", tmp, ...(existsSync(sources) ? [sources] : [])], { timeout: 900_000 });
  execFileSync("mv", [tmp, TARBALL]);
}

/** The guest's test units (test/helpers/guest.ts): the health check, and the probe. */
function installTestUnits(): void {
  box.installTestUnits(`#!/bin/sh
exec > /root/probe.txt 2>&1
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
echo "select=$(systemctl show -P ActiveState ext-boot-select.service)/$(systemctl show -P Result ext-boot-select.service)"
echo "sysext=$(systemctl show -P ActiveState systemd-sysext.service)"
s=$(systemctl show -P ExecMainStartTimestampMonotonic ext-boot-select.service); e=$(systemctl show -P ExecMainExitTimestampMonotonic ext-boot-select.service)
echo "select_ms=$(( (e - s) / 1000 ))"
echo "bless=$(systemctl show -P ActiveState ext-boot-bless.service)/$(systemctl show -P Result ext-boot-bless.service)"
echo "rg=$(rg --version 2>/dev/null | head -n 1)"
echo "jq=$(jq --version 2>/dev/null)"
echo "hello=$(hello 2>/dev/null)"
echo "nix=$(command -v nix || echo none)"
if systemd-analyze verify /etc/systemd/system/ext-boot-select.service /etc/systemd/system/ext-boot-bless.service > /root/verify.txt 2>&1; then echo "verify=ok"; else echo "verify=failed"; fi
echo "run=$(ls /run/extensions 2>/dev/null | tr '\\n' ' ')"
echo "node=$(command -v node || echo none)"
# The ext of the base system, or (once ext lives only in its image) the merged /usr/bin/ext.
if [ -x /usr/bin/ext ]; then ext=/usr/bin/ext; else ext="${NODE_IN_GUEST} ${EXT_IN_GUEST}"; fi
echo "ext=$ext"
echo "--- ext status"
$ext status
echo "--- ext generations"
$ext generations
echo "--- journal"
journalctl -b --no-pager -o cat -u ext-boot-select.service -u ext-boot-bless.service -u systemd-sysext.service
echo "--- end"
`);
}

/** One boot of the container; `failHealth` makes the boot not good; `cmdline` is what the selector
 *  reads as the kernel command line (a container shares the host's /proc/cmdline). */
function boot(opts: { failHealth: boolean; cmdline?: string; bindRepo?: boolean }): Probe {
  bootCount++;
  box.write("etc/systemd/system/ext-boot-select.service.d/test-cmdline.conf", `[Service]\nEnvironment="EXT_BOOT_CMDLINE=${opts.cmdline ?? ""}"\n`);
  const p = box.boot({ failHealth: opts.failHealth, binds: opts.bindRepo === false ? [] : [`--bind-ro=${REPO}:/opt/ext`] });
  timings[`boot${bootCount}`] = p.seconds;
  timings[`boot${bootCount}_select`] = Number(p.fields["select_ms"]) / 1000;
  return p;
}

function ext(args: string[]): string {
  const r = ns!.ext(["--root", guest, ...args]);
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

beforeAll(() => {
  ensureBuilt();
  let t = Date.now();
  ensureRootfs();
  timings["rootfs"] = (Date.now() - t) / 1000;
  t = Date.now();
  work = mkdtempSync("/var/tmp/ext-boot-real-");
  guest = join(work, "root");
  mkdirSync(guest);
  sh("tar", ["-xf", TARBALL, "-C", guest]);
  box = new Guest({ root: guest, dir: guest, work, machine: `exttest${process.pid}` });
  copyFileSync(process.execPath, join(guest, NODE_IN_GUEST.slice(1)));
  chmodSync(join(guest, NODE_IN_GUEST.slice(1)), 0o755);
  mkdirSync(join(guest, "opt/ext"), { recursive: true });
  installTestUnits();
  timings["guest"] = (Date.now() - t) / 1000;

  // Two generations made by ext, the units installed by ext setup, all under --root (in a private
  // mount namespace: `ext add` merges onto the guest's /usr to check it, and that merge must go away).
  t = Date.now();
  ns = openNamespace();
  ext(["add", "ripgrep"]); // generation 1
  ext(["setup", "--boot-tries", "1", "--ext-command", `${NODE_IN_GUEST} ${EXT_IN_GUEST}`]); // adopts 1 as good
  ext(["add", "jq"]); // generation 2: pending, one boot try
  ns.close();
  ns = undefined;
  timings["generations"] = (Date.now() - t) / 1000;
}, 1_200_000);

afterAll(() => {
  ns?.close();
  if (work && !process.env["EXT_TEST_KEEP"]) rmSync(work, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log(`boot test timings (s): ${JSON.stringify(timings)}`);
});

describe("a real boot with systemd as PID 1", () => {
  it("ext setup installed the units and enabled them; the boot state says generation 2 is pending", () => {
    expect(readlinkSync(join(guest, "etc/systemd/system/sysinit.target.wants/ext-boot-select.service"))).toBe("/etc/systemd/system/ext-boot-select.service");
    expect(readlinkSync(join(guest, "etc/systemd/system/multi-user.target.wants/ext-boot-bless.service"))).toBe("/etc/systemd/system/ext-boot-bless.service");
    const unit = readFileSync(join(guest, "etc/systemd/system/ext-boot-select.service"), "utf8");
    expect(unit).toContain(`ExecStart=${NODE_IN_GUEST} ${EXT_IN_GUEST} boot select`);
    const state = JSON.parse(readFileSync(join(guest, "var/lib/ext/boot.json"), "utf8")) as { pending: { generation: number; triesLeft: number } };
    expect(state.pending).toMatchObject({ generation: 2, triesLeft: 1 });
  });

  it("boot 1, not good: the current generation (2) is used: jq and rg run, without Nix; bless does not run", () => {
    const p = boot({ failHealth: true });
    expect(p.fields["select"], p.raw).toBe("active/success");
    expect(p.fields["sysext"], p.raw).toBe("active");
    expect(p.fields["jq"], p.raw).toBe("jq-1.6");
    expect(p.fields["rg"], p.raw).toMatch(/^ripgrep 13/);
    expect(p.fields["nix"]).toBe("none");
    expect(p.fields["verify"], readFileSync(join(guest, "root/verify.txt"), "utf8")).toBe("ok");
    expect(p.fields["bless"], p.raw).not.toBe("active/success");
    expect(p.raw).toMatch(/generation 2 is on trial: 0 more boot\(s\)/);
  });

  it("boot 2, not good: out of tries → reverted to generation 1: rg runs, jq is gone; status and generations say why", () => {
    const p = boot({ failHealth: true });
    expect(p.fields["select"], p.raw).toBe("active/success");
    expect(p.fields["rg"], p.raw).toMatch(/^ripgrep 13/);
    expect(p.fields["jq"], p.raw).toBe("");
    expect(p.raw).toMatch(/generation 2 did not reach a good boot in 1 try: went back to generation 1/);
    expect(p.raw).toMatch(/reverted: .* from generation 2 to generation 1/); // ext status
    expect(p.raw).toMatch(/generation 2 was reverted at boot/); // ext generations
    const current = JSON.parse(readFileSync(join(guest, "var/lib/ext/current.json"), "utf8")) as { generation: number };
    expect(current.generation).toBe(1);
  });

  it("boot 3, good: generation 1 stays and is blessed", () => {
    const p = boot({ failHealth: false });
    expect(p.fields["bless"], p.raw).toBe("active/success");
    expect(p.fields["rg"], p.raw).toMatch(/^ripgrep 13/);
    expect(p.fields["jq"], p.raw).toBe("");
    const state = JSON.parse(readFileSync(join(guest, "var/lib/ext/boot.json"), "utf8")) as { lastBoot: { generation: number; blessedAt?: string; bootId: string } };
    expect(state.lastBoot.generation).toBe(1);
    expect(state.lastBoot.blessedAt).toBeDefined();
    expect(state.lastBoot.bootId).toBe(p.fields["boot_id"]!.replace(/-/g, ""));
  });

  it("boot 4, ext.generation=2 on the command line: generation 2 for this boot only, through /run/extensions", () => {
    const p = boot({ failHealth: false, cmdline: "quiet ext.generation=2" });
    expect(p.fields["jq"], p.raw).toBe("jq-1.6");
    expect(p.fields["run"], p.raw).toMatch(/ext\.raw/);
    const current = JSON.parse(readFileSync(join(guest, "var/lib/ext/current.json"), "utf8")) as { generation: number };
    expect(current.generation).toBe(1);
  });

  it("boot 5, ext.disable: no ext extension; boot 6: generation 1 again", () => {
    const off = boot({ failHealth: false, cmdline: "ext.disable" });
    expect(off.fields["rg"], off.raw).toBe("");
    expect(off.fields["jq"], off.raw).toBe("");
    const back = boot({ failHealth: false });
    expect(back.fields["rg"], back.raw).toMatch(/^ripgrep 13/);
    expect(back.fields["jq"], back.raw).toBe("");
  }, 300_000);
});

// Issue 16, item 3: ext present only in its own image. The base system loses its node and the bound
// repository; generation 3 adds ext itself (test/fixtures-self: the working tree's ext with a store
// node, relocated to /usr/store like any package), and `ext setup --from-image` makes the units run
// /etc/ext/boot.sh, which runs the ext of the linked image in a mount namespace of its own before
// systemd-sysext.service merges anything.
describe("a real boot with ext only inside its own image", () => {
  beforeAll(() => {
    rmSync(join(guest, NODE_IN_GUEST.slice(1)));
    const self = assemble(join(work, "ext-self")) as string;
    ns = openNamespace();
    ext(["--source", self, "add", "ext"]); // generation 3: ripgrep, ext — pending, one try
    ext(["setup", "--from-image"]);
    ns.close();
    ns = undefined;
  }, 900_000);

  it("the units run the shell selector; the base system has neither node nor ext", () => {
    const unit = readFileSync(join(guest, "etc/systemd/system/ext-boot-select.service"), "utf8");
    expect(unit).toContain("ExecStart=/bin/sh /etc/ext/boot.sh boot select");
    expect(readFileSync(join(guest, "etc/systemd/system/ext-boot-bless.service"), "utf8")).toContain("ExecStart=/bin/sh /etc/ext/boot.sh boot bless");
    expect(readFileSync(join(guest, "etc/ext/boot.sh"), "utf8")).toBe(readFileSync(join(REPO, "templates/ext-boot.sh"), "utf8"));
    expect(existsSync(join(guest, NODE_IN_GUEST.slice(1)))).toBe(false);
    expect(existsSync(join(guest, "usr/bin/node"))).toBe(false);
    expect(existsSync(join(guest, "usr/bin/ext"))).toBe(false);
  });

  it("boot 7, good: generation 3 is selected by the ext of its own image, merged and blessed", () => {
    const p = boot({ failHealth: false, bindRepo: false });
    expect(p.fields["select"], p.raw).toBe("active/success");
    expect(p.fields["ext"], p.raw).toBe("/usr/bin/ext");
    expect(p.fields["node"], p.raw).toBe("none");
    expect(p.fields["rg"], p.raw).toMatch(/^ripgrep 13/);
    expect(p.fields["bless"], p.raw).toBe("active/success");
    expect(p.raw).toMatch(/generation 3 is on trial: 0 more boot\(s\)/);
    const state = JSON.parse(readFileSync(join(guest, "var/lib/ext/boot.json"), "utf8")) as { lastBoot: { generation: number; blessedAt?: string } };
    expect(state.lastBoot).toMatchObject({ generation: 3 });
    expect(state.lastBoot.blessedAt).toBeDefined();
    // The shell selector's fallback: the image of the newest good generation, 3.
    const three = JSON.parse(readFileSync(join(guest, "var/lib/ext/generations/3.json"), "utf8")) as { image: { sha256: string } };
    expect(readFileSync(join(guest, "var/lib/ext/boot.fallback"), "utf8")).toBe(`${three.image.sha256}\n`);
  });

  it("boots 8 and 9, not good: generation 4 (+jq) is tried once, then reverted to 3 — all with ext only in its image", () => {
    ns = openNamespace();
    try {
      ext(["add", "jq"]); // generation 4: ripgrep, ext, jq — pending, one try
    } finally {
      ns.close();
      ns = undefined;
    }
    const tried = boot({ failHealth: true, bindRepo: false });
    expect(tried.fields["select"], tried.raw).toBe("active/success");
    expect(tried.fields["jq"], tried.raw).toBe("jq-1.6");
    expect(tried.fields["bless"], tried.raw).not.toBe("active/success");
    expect(tried.raw).toMatch(/generation 4 is on trial: 0 more boot\(s\)/);
    const back = boot({ failHealth: true, bindRepo: false });
    expect(back.fields["select"], back.raw).toBe("active/success");
    expect(back.fields["jq"], back.raw).toBe("");
    expect(back.fields["rg"], back.raw).toMatch(/^ripgrep 13/);
    expect(back.fields["ext"], back.raw).toBe("/usr/bin/ext");
    expect(back.fields["node"], back.raw).toBe("none");
    expect(back.raw).toMatch(/generation 4 did not reach a good boot in 1 try: went back to generation 3/);
    expect(back.raw).toMatch(/reverted: .* from generation 4 to generation 3/); // ext status, run from the image
    const current = JSON.parse(readFileSync(join(guest, "var/lib/ext/current.json"), "utf8")) as { generation: number };
    expect(current.generation).toBe(3);
  }, 600_000);

  it("boots 10 and 11: a generation without ext is selected by the ext of the last good image, cannot be blessed, and is reverted", () => {
    ns = openNamespace();
    try {
      // Generation 5 is ripgrep alone: the image of generation 1, which is known good, so not on trial.
      ext(["remove", "ext"]);
      ext(["add", "hello"]); // generation 6: ripgrep, hello — a new image, without /usr/bin/ext
    } finally {
      ns.close();
      ns = undefined;
    }
    const tried = boot({ failHealth: false, bindRepo: false });
    expect(tried.fields["select"], tried.raw).toBe("active/success");
    expect(tried.fields["rg"], tried.raw).toMatch(/^ripgrep 13/);
    expect(tried.raw).toMatch(/holds no \/usr\/bin\/ext/);
    expect(tried.raw).toMatch(/selected with the ext of the last good image/);
    expect(tried.fields["hello"], tried.raw).toBe("Hello, world!");
    expect(tried.raw).toMatch(/generation 6 is on trial: 0 more boot\(s\)/);
    expect(tried.raw).toMatch(/no ext is merged this boot: nothing to bless/);
    const back = boot({ failHealth: false, bindRepo: false });
    expect(back.fields["ext"], back.raw).toBe("/usr/bin/ext");
    expect(back.fields["hello"], back.raw).toBe("");
    expect(back.raw).toMatch(/generation 6 did not reach a good boot in 1 try: went back to generation 3/);
    const current = JSON.parse(readFileSync(join(guest, "var/lib/ext/current.json"), "utf8")) as { generation: number };
    expect(current.generation).toBe(3);
  }, 600_000);
});
