import { describe, expect, it } from "vitest";
import { chooseElevator, type ElevationProbe } from "../../../src/elevate/choose.js";
import { elevatorArgv, onlyRootWrites, resolvedGlobals, safePath, passedEnvironment } from "../../../src/elevate/request.js";
import { applyPassedEnvironment } from "../../../src/elevate/index.js";
import { chmodSync, chownSync, mkdtempSync, mkdirSync, symlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// run0 and pkexec cannot run for real on the test machine (no systemd as PID 1, no system bus, no
// polkitd): their selection is tested here on constructed probes; sudo also runs for real
// (test/integration/elevation.test.ts).

const fedora: ElevationProbe = {
  uid: 1000,
  groups: ["me", "wheel"],
  run0: "/usr/bin/run0",
  pkexec: "/usr/bin/pkexec",
  sudo: "/usr/bin/sudo",
  systemdBooted: true,
  systemdVersion: 257,
  systemBus: true,
  polkitAction: true,
  sudoWithoutPassword: false,
};

const kind = (p: Partial<ElevationProbe>) => chooseElevator({ ...fedora, ...p }).elevator?.kind ?? null;

describe("which way to root", () => {
  it("run0 where systemd ≥ 256 runs as PID 1 with a system bus", () => {
    expect(kind({})).toBe("run0");
    expect(chooseElevator(fedora).elevator).toEqual({ kind: "run0", program: "/usr/bin/run0", reason: "systemd 257 runs, with run0" });
  });

  it("not run0 on systemd < 256, without systemd as PID 1 (a container, the sid tree), or without a system bus", () => {
    expect(kind({ systemdVersion: 255 })).toBe("pkexec");
    expect(kind({ systemdBooted: false })).toBe("pkexec");
    expect(kind({ run0: null, systemdVersion: 252 })).toBe("pkexec");
    const c = chooseElevator({ ...fedora, run0: null, systemdVersion: 252 });
    expect(c.skipped).toContain("run0: systemd 252 has none (it came with 256)");
    expect(chooseElevator({ ...fedora, systemdBooted: false }).skipped[0]).toMatch(/not running as PID 1/);
    // Without a bus neither run0 nor pkexec can reach polkit: sudo.
    expect(kind({ systemBus: false })).toBe("sudo");
  });

  it("pkexec with ext's polkit action before sudo; without the action, sudo first and pkexec's generic action last", () => {
    expect(kind({ run0: null })).toBe("pkexec");
    expect(chooseElevator({ ...fedora, run0: null }).elevator?.reason).toBe("pkexec with ext's polkit action");
    expect(kind({ run0: null, polkitAction: false })).toBe("sudo");
    const last = chooseElevator({ ...fedora, run0: null, polkitAction: false, sudo: null });
    expect(last.elevator).toEqual({ kind: "pkexec", program: "/usr/bin/pkexec", reason: "pkexec (polkit's generic action)" });
  });

  it("sudo on Debian 12 (systemd 252, no polkit agent needed) for a member of sudo", () => {
    const debian = { ...fedora, groups: ["me", "sudo"], run0: null, pkexec: null, systemdBooted: false, systemdVersion: null, systemBus: false, polkitAction: false };
    expect(chooseElevator(debian).elevator).toEqual({ kind: "sudo", program: "/usr/bin/sudo", reason: "you are in the group sudo" });
  });

  it("a user in no admin group: nothing, unless sudo lets them in without a password (then sudo, never polkit)", () => {
    const user = { ...fedora, groups: ["me", "users"] };
    const none = chooseElevator(user);
    expect(none.elevator).toBeNull();
    expect(none.skipped.join("\n")).toMatch(/none of the groups sudo, wheel, admin/);
    expect(kind({ groups: ["me"], sudoWithoutPassword: true })).toBe("sudo");
    expect(kind({ groups: ["me"], sudoWithoutPassword: true, sudo: null })).toBeNull();
  });

  it("nothing at all installed: nothing, with a reason for each", () => {
    const c = chooseElevator({ ...fedora, run0: null, pkexec: null, sudo: null });
    expect(c.elevator).toBeNull();
    expect(c.skipped.map((s) => s.split(":")[0])).toEqual(["run0", "pkexec", "sudo"]);
  });
});

describe("the root part's command line", () => {
  it("sudo asks on the terminal, else through the user's askpass helper, else not at all (-n)", () => {
    expect(elevatorArgv("sudo", "/usr/bin/sudo", {}, true)).toEqual(["/usr/bin/sudo", "--"]);
    expect(elevatorArgv("sudo", "/usr/bin/sudo", { SUDO_ASKPASS: "/usr/bin/ksshaskpass" }, false)).toEqual(["/usr/bin/sudo", "-A", "--"]);
    expect(elevatorArgv("sudo", "/usr/bin/sudo", {}, false)).toEqual(["/usr/bin/sudo", "-n", "--"]);
    expect(elevatorArgv("run0", "/usr/bin/run0")).toEqual(["/usr/bin/run0"]);
    expect(elevatorArgv("pkexec", "/usr/bin/pkexec")).toEqual(["/usr/bin/pkexec"]);
  });

  it("global options: real absolute paths, environment settings made options", () => {
    const dir = mkdtempSync(join(tmpdir(), "ext-elev-"));
    try {
      mkdirSync(join(dir, "real"));
      symlinkSync(join(dir, "real"), join(dir, "link"));
      const base = { root: "/", name: "ext", compression: "lz4", json: false, quiet: false, verbose: false, wait: true };
      expect(resolvedGlobals(base, {}, dir)).toEqual(["--name", "ext", "--compression", "lz4"]);
      expect(resolvedGlobals({ ...base, root: "link", store: "link", source: `path:${dir}/link?dir=x`, selinuxContexts: "none", json: true, wait: false }, {}, dir))
        .toEqual(["--root", `${dir}/real`, "--source", `path:${dir}/real?dir=x`, "--store", `${dir}/real`, "--selinux-contexts", "none", "--name", "ext", "--compression", "lz4", "--json", "--no-wait"]);
      expect(resolvedGlobals(base, { EXT_SOURCE: "github:NixOS/nixpkgs", EXT_STORE: "system" }, dir))
        .toEqual(["--source", "github:NixOS/nixpkgs", "--store", "system", "--name", "ext", "--compression", "lz4"]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("the environment: the named list only; PATH without directories another user can change", () => {
    const env = passedEnvironment({ TERM: "xterm", NIX_CONFIG: "post-build-hook = /tmp/x", LD_PRELOAD: "/tmp/x.so", NODE_OPTIONS: "--require /tmp/x.js", PATH: "/tmp:/usr/bin" });
    expect(Object.keys(env).sort()).toEqual(["PATH", "TERM"]);
    expect(env["PATH"]!.split(":")).not.toContain("/tmp");
    expect(safePath("/home/me/bin:rel:/nix/var/nix/profiles/default/bin:/usr/bin", (d) => d.startsWith("/nix") || d === "/usr/bin"))
      .toBe("/nix/var/nix/profiles/default/bin:/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin");
  });

  it("only root can change it: root-owned all the way up, a sticky directory above is fine, a writable one is not", () => {
    const dir = mkdtempSync(join(tmpdir(), "ext-elev-"));
    try {
      for (const [name, mode] of [["sticky", 0o1777], ["open", 0o777], ["plain", 0o755]] as const) {
        mkdirSync(join(dir, name));
        chmodSync(join(dir, name), mode);
        mkdirSync(join(dir, name, "bin"));
      }
      expect(onlyRootWrites(join(dir, "plain", "bin"))).toBe(true);
      expect(onlyRootWrites(join(dir, "sticky", "bin"))).toBe(true);
      expect(onlyRootWrites(join(dir, "sticky"))).toBe(false); // anyone may put a program there
      expect(onlyRootWrites(join(dir, "open", "bin"))).toBe(false); // anyone may replace bin
      chownSync(join(dir, "plain", "bin"), 1000, 1000);
      expect(onlyRootWrites(join(dir, "plain", "bin"))).toBe(false);
      expect(onlyRootWrites(join(dir, "missing"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("the root part takes only the named variables", () => {
    const env: NodeJS.ProcessEnv = {};
    applyPassedEnvironment(JSON.stringify({ TERM: "dumb", PATH: "/usr/bin" }), env);
    expect(env).toEqual({ TERM: "dumb", PATH: "/usr/bin" });
    expect(() => applyPassedEnvironment(JSON.stringify({ LD_PRELOAD: "/tmp/x.so" }), {})).toThrow(/LD_PRELOAD is not passed/);
    expect(() => applyPassedEnvironment("[", {})).toThrow(/not JSON/);
  });
});
