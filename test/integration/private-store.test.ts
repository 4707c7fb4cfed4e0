import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, FIXTURES, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { OFFLINE_NIX_CONFIG, outputInstallable } from "../helpers/nix-env.js";
import {
  chooseStore,
  describeStore,
  formatStore,
  parseGcSummary,
  readStoreSetting,
  type StoreProbe,
} from "../../src/store/index.js";
import { checkStore } from "../../src/doctor/store.js";
import type { DoctorInput, Host } from "../../src/doctor/index.js";
import type { StoreLocation } from "../../src/nix/types.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 8: a private Nix store where /nix cannot exist (Fedora Atomic with composefs). End to end with
// /nix hidden from ext itself: a read-only, empty tmpfs over /nix in the test's mount namespace, so
// /nix/store is absent and nothing can create it — only the private store (/var/lib/ext/nix, on the
// namespace's tmpfs /var/lib) is in use. Nix is Debian's /usr/bin/nix, which still runs.

// A chroot store always builds in Nix's sandbox: the fixtures copy from the host, so those paths must
// be visible there (OFFLINE_NIX_CONFIG's extra-sandbox-paths). `build-users-group =`: the hidden /nix gives this store its own pool of build
// users, and Nix kills every process of a build user before using it — with the host's Nix building
// at the same time from its own pool, builds as nixbld1 would kill each other.
const SANDBOX = "build-users-group =";
const HIDDEN_NIX_CONFIG = `${OFFLINE_NIX_CONFIG}\n${SANDBOX}`;
const PRIVATE = "/var/lib/ext/nix";

function hideNix(ns: Namespace): void {
  const r = ns.run(["mount", "-t", "tmpfs", "-o", "ro,mode=0755", "tmpfs", "/nix"]);
  if (r.status !== 0) throw new Error(`cannot hide /nix: ${r.stderr}`);
  expect(ns.run(["test", "-e", "/nix/store"]).status).not.toBe(0);
  expect(ns.run(["mkdir", "-p", "/nix/store"]).status).not.toBe(0);
}

function ok(ns: Namespace, args: string[], env: Record<string, string>): RunOutput {
  const r = ns.ext(args, { env });
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** Runs `nix` on the private store inside the namespace (as ext does: state dir inside the store). */
function nixPrivate(ns: Namespace, args: string[], config = HIDDEN_NIX_CONFIG): RunOutput {
  return ns.run(["nix", "--extra-experimental-features", "nix-command flakes", "--store", PRIVATE, ...args], {
    env: { ...(process.env as Record<string, string>), NIX_CONFIG: config, NIX_STATE_DIR: `${PRIVATE}/nix/var/nix` },
  });
}

function storeNames(ns: Namespace): string[] {
  return ns.run(["ls", `${PRIVATE}/nix/store`]).stdout.split("\n").filter((n) => n && !n.endsWith(".drv") && !n.endsWith(".lock"));
}

// The end-to-end tests run bin/ext.js, which runs dist/.
beforeAll(() => {
  ensureBuilt();
});

describe("choosing the store (no Nix, a described machine)", () => {
  const machine = (m: { dirs?: string[]; writable?: string[]; files?: Record<string, string>; uid?: number; env?: Record<string, string>; sockets?: string[]; nonEmpty?: string[] }): StoreProbe => ({
    uid: m.uid ?? 0,
    env: m.env ?? {},
    home: "/home/me",
    exists: (p) => (m.dirs ?? []).includes(p) || (m.sockets ?? []).includes(p) || p in (m.files ?? {}),
    isDir: (p) => (m.dirs ?? []).includes(p),
    writable: (p) => (m.writable ?? []).includes(p),
    readText: (p) => m.files?.[p],
    hasEntries: (p) => (m.nonEmpty ?? []).includes(p),
  });
  const state = "/var/lib/ext";
  const withGroup = { "/etc/group": "root:x:0:\nnixbld:x:30000:nixbld1\n" };

  it("auto: no /nix and a read-only root → the private store under /var/lib/ext/nix, and Nix's state inside it", () => {
    const s = chooseStore(readStoreSetting(undefined, {}), state, machine({ files: withGroup }));
    expect(s).toMatchObject({ kind: "private", root: "/var/lib/ext/nix", storeDir: "/var/lib/ext/nix/nix/store", mode: "auto", from: "default" });
    expect(s.reason).toMatch(/\/nix does not exist and the root file system is read-only/);
    expect(s.env).toEqual({ NIX_STATE_DIR: "/var/lib/ext/nix/nix/var/nix" });
    expect(formatStore(describeStore(s))).toMatch(/^private store \/var\/lib\/ext\/nix\/nix\/store \(auto: \/nix does not exist/);
    // /nix there but not this user's to write, and no /nix/store: private too.
    expect(chooseStore({ mode: "auto", from: "default" }, state, machine({ dirs: ["/nix"], files: withGroup })).kind).toBe("private");
  });

  it("auto: /nix/store not made yet but Nix can make it (nix-bin just installed, or a writable root) → the system store", () => {
    const fresh = chooseStore({ mode: "auto", from: "default" }, state, machine({ dirs: ["/nix"], writable: ["/nix"] }));
    expect(fresh).toMatchObject({ kind: "system", root: "/", reason: "Nix can create /nix/store in /nix" });
    const noNix = chooseStore({ mode: "auto", from: "default" }, state, machine({ writable: ["/"] }));
    expect(noNix).toMatchObject({ kind: "system", reason: "Nix can create /nix on this writable root" });
    expect(chooseStore({ mode: "auto", from: "default" }, state, machine({ files: { "/nix": "" }, writable: ["/"] })).kind).toBe("private");
  });

  it("auto: a private store that only ext build or ext show filled does not stick", () => {
    const s = chooseStore({ mode: "auto", from: "default" }, state, machine({ dirs: ["/var/lib/ext/nix/nix/store", "/var/lib/ext/nix/nix/var/nix/gcroots/ext", "/nix"], writable: ["/nix"] }));
    expect(s).toMatchObject({ kind: "system", root: "/" });
  });

  it("auto: /nix/store that Nix can write, or a daemon serves → the system store", () => {
    const local = chooseStore({ mode: "auto", from: "default" }, state, machine({ dirs: ["/nix/store", "/nix/var/nix"], writable: ["/nix/var/nix"] }));
    expect(local).toMatchObject({ kind: "system", root: "/", storeDir: "/nix/store", env: {}, problems: [] });
    expect(local.reason).toBe("/nix/store exists and Nix can write /nix/var/nix");
    const daemon = chooseStore({ mode: "auto", from: "default" }, state, machine({ uid: 1000, dirs: ["/nix/store"], sockets: ["/nix/var/nix/daemon-socket/socket"] }));
    expect(daemon).toMatchObject({ kind: "system", reason: "/nix/store exists and a Nix daemon serves it" });
  });

  it("auto: /nix/store exists but is unusable → private, saying why", () => {
    const s = chooseStore({ mode: "auto", from: "default" }, state, machine({ uid: 1000, dirs: ["/nix/store"], env: { HOME: "/home/me" } }));
    // Not root and /var/lib/ext/nix is not writable: a per-user private store.
    expect(s).toMatchObject({ kind: "private", root: "/home/me/.cache/ext/nix" });
    expect(s.reason).toMatch(/cannot write \/nix\/var\/nix and no Nix daemon/);
    expect(chooseStore({ mode: "auto", from: "default" }, state, machine({ uid: 1000, env: { XDG_CACHE_HOME: "/xdg" } })).root).toBe("/xdg/ext/nix");
  });

  it("auto: a private store that installed generations use stays in use, even once /nix/store appears", () => {
    const s = chooseStore({ mode: "auto", from: "default" }, state, machine({
      dirs: ["/var/lib/ext/nix/nix/store", "/nix/store", "/nix/var/nix"], writable: ["/nix/var/nix"], nonEmpty: ["/var/lib/ext/nix/nix/var/nix/gcroots/ext"],
    }));
    expect(s).toMatchObject({ kind: "private", root: "/var/lib/ext/nix" });
    expect(s.reason).toMatch(/installed generations use ext's private store.*'--store system'/);
    // A system Nix exists: its state directory (and its pool of build users) is shared, not redirected.
    expect(s.env).toEqual({});
  });

  it("system and DIR are taken as given; problems are named", () => {
    const sys = chooseStore(readStoreSetting("system", {}), state, machine({}));
    expect(sys).toMatchObject({ kind: "system", from: "option", reason: "--store system names it", problems: ["/nix does not exist and the root file system is read-only or not this user's"] });
    const dir = chooseStore(readStoreSetting(undefined, { EXT_STORE: "/srv/nix" }), state, machine({ files: withGroup }));
    expect(dir).toMatchObject({ kind: "private", root: "/srv/nix", mode: "dir", from: "environment", reason: "EXT_STORE=/srv/nix names it" });
    expect(readStoreSetting("rel/store", {}, "/work")).toEqual({ mode: "dir", dir: "/work/rel/store", from: "option" });
    expect(chooseStore(readStoreSetting("/", {}), state, machine({})).kind).toBe("system");
  });

  it("bad values are usage errors with a hint", () => {
    expect(() => readStoreSetting("", {})).toThrow(/--store is empty/);
    expect(() => readStoreSetting("daemon", {})).toThrow(/not a Nix store URL/);
    expect(() => readStoreSetting("ssh://host", {})).toThrow(/not a Nix store URL/);
    expect(() => readStoreSetting("/srv/nix/nix/store", {})).toThrow(/names a store directory itself/);
    try {
      readStoreSetting("/srv/nix/nix/store", {});
    } catch (e) {
      expect((e as { hint: string }).hint).toMatch(/--store \/srv\/nix /);
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });

  it("as root without a nixbld group (and none configured), builds run without build users", () => {
    const bare = chooseStore({ mode: "auto", from: "default" }, state, machine({ files: { "/etc/group": "root:x:0:\n" }, env: { NIX_CONFIG: "substituters =" } }));
    expect(bare.env["NIX_CONFIG"]).toBe("build-users-group =\nsubstituters =");
    const configured = chooseStore({ mode: "auto", from: "default" }, state, machine({ files: { "/etc/group": "root:x:0:\n", "/etc/nix/nix.conf": "build-users-group = builders\n" } }));
    expect(configured.env["NIX_CONFIG"]).toBeUndefined();
    expect(chooseStore({ mode: "auto", from: "default" }, state, machine({ files: withGroup })).env["NIX_CONFIG"]).toBeUndefined();
  });

  it("a location given without a reason is still described", () => {
    expect(describeStore({ root: "/x" })).toMatchObject({ kind: "private", path: "/x/nix/store", mode: "dir" });
    expect(describeStore({ root: "/" })).toMatchObject({ kind: "system", path: "/nix/store" });
  });

  it("ext doctor's nix-store check: which store and why; an error for a system store that is not there", async () => {
    const host = (paths: string[]) => ({ exists: async (p: string) => paths.includes(p) }) as unknown as Host;
    const input = (store: StoreLocation, paths: string[]) => ({ nix: { store, system: "x86_64-linux" }, host: host(paths) }) as unknown as DoctorInput;
    const priv = chooseStore({ mode: "auto", from: "default" }, state, machine({ files: withGroup }));
    expect(await checkStore(input(priv, []))).toEqual([expect.objectContaining({
      check: "nix-store", status: "ok", message: "private store /var/lib/ext/nix/nix/store (created on first use): /nix does not exist and the root file system is read-only or not this user's, so ext keeps its packages in a private store",
      details: expect.objectContaining({ kind: "private", root: "/var/lib/ext/nix", exists: false }),
    })]);
    const sys = chooseStore({ mode: "system", from: "option" }, state, machine({}));
    expect(await checkStore(input(sys, []))).toEqual([expect.objectContaining({ status: "error", message: expect.stringMatching(/system store \(--store system names it\), but \/nix does not exist and the root/) })]);
    const unusable = chooseStore({ mode: "system", from: "option" }, state, machine({ uid: 1000, dirs: ["/nix/store"] }));
    expect(await checkStore(input(unusable, ["/nix/store"]))).toEqual([expect.objectContaining({ status: "warning", fix: expect.stringMatching(/daemon/) })]);
    expect(await checkStore(input({ root: "/" }, ["/nix/store"]))).toEqual([expect.objectContaining({ status: "ok", message: "system store /nix/store (given to ext directly)" })]);
  });

  it("reads Nix's GC summary", () => {
    expect(parseGcSummary("deleting '/nix/store/x'\n7 store paths deleted, 0.98 MiB freed\n")).toEqual({ deletedPaths: 7, freedBytes: Math.round(0.98 * 1024 ** 2) });
    expect(parseGcSummary("0 store paths deleted, 0.00 MiB freed")).toEqual({ deletedPaths: 0, freedBytes: 0 });
  });
});

describe("with /nix hidden: only the private store", () => {
  let ns: Namespace;
  const env = { NIX_CONFIG: HIDDEN_NIX_CONFIG };

  beforeAll(() => {
    ns = openNamespace();
    hideNix(ns);
  });
  afterAll(() => ns?.close());

  it("status and doctor say which store and why, before anything is installed", () => {
    const st = JSON.parse(ok(ns, ["status", "--json"], env).stdout) as { store: { kind: string; path: string; reason: string } };
    expect(st.store).toMatchObject({ kind: "private", root: PRIVATE, path: `${PRIVATE}/nix/store`, mode: "auto", from: "default" });
    expect(st.store.reason).toMatch(/\/nix\/store does not exist and Nix cannot create it \(\/nix is read-only or not this user's\), so ext keeps its packages in a private store/);
    expect(ok(ns, ["status"], env).stdout).toMatch(/^nix store: +private store \/var\/lib\/ext\/nix\/nix\/store \(auto: \/nix\/store does not exist/m);
    const doc = JSON.parse(ns.ext(["doctor", "--json"], { env }).stdout) as { findings: { check: string; status: string; message: string }[] };
    expect(doc.findings.find((f) => f.check === "nix-store")).toMatchObject({ status: "ok", message: expect.stringMatching(/^private store \/var\/lib\/ext\/nix\/nix\/store \(created on first use\)/) });
  });

  it("ext add builds the fixtures into /var/lib/ext/nix/nix/store; the tools run from /usr/bin", () => {
    const r = ok(ns, ["add", "ripgrep", "jq", "greet"], env);
    expect(r.stdout).toMatch(/generation 1 is active/);
    expect(ns.run(["/usr/bin/rg", "--version"]).stdout).toMatch(/^ripgrep 13/);
    expect(ns.run(["sh", "-c", "echo '{\"a\":[1,2]}' | /usr/bin/jq -c '.a|map(.*2)'"]).stdout.trim()).toBe("[2,4]");
    expect(ns.run(["/usr/bin/greet"]).stdout).toMatch(/^Hello from greet/);
    // The image and the record name the same /nix/store/… paths; the bytes came from the private store.
    const record = JSON.parse(ns.read("/var/lib/ext/generations/1.json") ?? "{}") as { closure: { paths: string[] } };
    expect(record.closure.paths.length).toBeGreaterThanOrEqual(9);
    for (const p of record.closure.paths) {
      expect(p).toMatch(/^\/nix\/store\/[0-9a-z]{32}-/);
      expect(ns.run(["test", "-d", `${PRIVATE}${p}`]).status).toBe(0);
    }
    // The generation's store paths are GC roots from the start: a plain `nix store gc` on the private
    // store (by hand, or Nix's own when the disk fills) keeps them.
    expect(nixPrivate(ns, ["store", "gc"]).status).toBe(0);
    for (const p of record.closure.paths) expect(ns.run(["test", "-d", `${PRIVATE}${p}`]).status).toBe(0);
    expect(ns.run(["/usr/bin/rg", "--version"]).status).toBe(0);
    // Nothing appeared under /nix (it cannot: read-only), and Nix's state is inside the private store.
    expect(ns.run(["ls", "-A", "/nix"]).stdout).toBe("");
    expect(ns.run(["test", "-f", `${PRIVATE}/nix/var/nix/db/db.sqlite`]).status).toBe(0);
    expect(ok(ns, ["status"], env).stdout).toMatch(/^nix store: +private store \/var\/lib\/ext\/nix\/nix\/store \(auto: \/nix\/store does not exist and Nix cannot create it \(\/nix is read-only or not this user's\); installed generations use ext's private store\)/m);
  });

  it("kept packages are found again in the private store (no rebuild, no Nix call for a no-op)", () => {
    const again = ok(ns, ["add", "jq"], env);
    expect(again.stdout).toMatch(/nothing to do|already/i);
    const more = ok(ns, ["add", "hello"], env);
    expect(more.stdout).toMatch(/generation 2 is active/);
    expect(ns.run(["/usr/bin/hello"]).stdout.trim()).toBe("Hello, world!");
  });

  it("ext gc collects the private store, keeping what kept generations need", () => {
    ok(ns, ["remove", "jq", "hello"], env);
    const before = storeNames(ns);
    expect(before.some((n) => /-jq-1\.6$/.test(n))).toBe(true);
    const gc = JSON.parse(ok(ns, ["gc", "--keep", "0", "--json"], env).stdout) as { deletedGenerations: number[]; store: { root: string; roots: number; deletedPaths: number; freedBytes: number } };
    expect(gc.deletedGenerations).toEqual([1, 2]);
    expect(gc.store).toMatchObject({ root: PRIVATE });
    expect(gc.store.deletedPaths).toBeGreaterThan(0);
    expect(gc.store.freedBytes).toBeGreaterThan(0);
    const after = storeNames(ns);
    // jq and what only it needed are gone; hello too; ripgrep's and greet's closures stay.
    for (const gone of [/-jq-1\.6$/, /-libjq-1\.6$/, /-oniguruma-/, /-hello-2\.10$/]) expect(after.some((n) => gone.test(n))).toBe(false);
    for (const kept of [/-ripgrep-13\.0\.0$/, /-pcre2-/, /-libgcc-/, /-glibc-/, /-greet-1\.0$/, /-dash-/]) expect(after.some((n) => kept.test(n))).toBe(true);
    // The roots are Nix's own: a plain `nix store gc` keeps them too.
    const record = JSON.parse(ns.read("/var/lib/ext/generations/3.json") ?? "{}") as { closure: { paths: string[] } };
    expect(gc.store.roots).toBeGreaterThanOrEqual(record.closure.paths.length);
    expect(nixPrivate(ns, ["store", "gc"]).status).toBe(0);
    expect(storeNames(ns).sort()).toEqual(after.sort());
    expect(ns.run(["/usr/bin/rg", "--version"]).status).toBe(0);
    expect(ns.run(["/usr/bin/greet"]).status).toBe(0);
    // The next add still works from the collected store (ripgrep and greet are kept, jq is built again).
    ok(ns, ["add", "jq"], env);
    expect(ns.run(["/usr/bin/jq", "--version"]).stdout).toMatch(/jq-1\.6/);
  });

  it("--store system where /nix/store does not exist: status and doctor name the problem", () => {
    const st = JSON.parse(ok(ns, ["--store", "system", "status", "--json"], env).stdout) as { store: { kind: string; problems: string[] } };
    expect(st.store).toMatchObject({ kind: "system", mode: "system", from: "option", problems: ["/nix/store does not exist and Nix cannot create it (/nix is read-only or not this user's)"] });
    const doc = JSON.parse(ns.ext(["--store", "system", "doctor", "--json"], { env }).stdout) as { findings: { check: string; status: string; fix: string }[] };
    expect(doc.findings.find((f) => f.check === "nix-store")).toMatchObject({ status: "error", fix: expect.stringMatching(/private store/) });
    const bad = ns.ext(["--store", "ssh://x", "status"], { env });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a Nix store URL/);
  });
});

describe("with /nix hidden: substituted from a local binary cache, not built", () => {
  let ns: Namespace;
  let work: string;
  let env: Record<string, string>;
  const KEY_NAME = "ext-test-cache-1";

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "ext-cache-"));
    const nixEnv = { ...process.env, NIX_CONFIG: OFFLINE_NIX_CONFIG };
    // A signed file:// binary cache of the fixtures ripgrep and hello (both outputs), made from the
    // system store (outside the namespace, where /nix is not hidden).
    execFileSync("nix-store", ["--generate-binary-cache-key", KEY_NAME, join(work, "key.sec"), join(work, "key.pub")], { env: nixEnv });
    execFileSync("nix", ["copy", "--to", `file://${work}/cache?secret-key=${work}/key.sec&compression=none`,
      `${FIXTURES}#ripgrep`, outputInstallable(FIXTURES, "hello", "out"), outputInstallable(FIXTURES, "hello", "man")], { env: nixEnv, stdio: ["ignore", "ignore", "pipe"] });
    const publicKey = readFileSync(join(work, "key.pub"), "utf8").trim();
    // The cache is the only substituter, and max-jobs = 0: Nix may not build anything itself, so a
    // path that is not substituted fails the command.
    env = {
      NIX_CONFIG: [
        OFFLINE_NIX_CONFIG,
        SANDBOX,
        `substituters = file://${work}/cache`,
        `trusted-public-keys = ${publicKey}`,
        "max-jobs = 0",
      ].join("\n"),
    };
    ns = openNamespace();
    hideNix(ns);
  });
  afterAll(() => {
    ns?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("ext add ripgrep hello fetches the closure from the cache into the private store", () => {
    const r = ok(ns, ["add", "ripgrep", "hello", "--verbose"], env);
    expect(r.stdout).toMatch(/generation 1 is active/);
    expect(r.stderr).toMatch(/copying path '\/nix\/store\/[0-9a-z]{32}-ripgrep-13\.0\.0' from 'file:\/\//);
    expect(r.stderr).not.toMatch(/building '\/nix\/store\/[^']*ripgrep/);
    expect(ns.run(["/usr/bin/rg", "--version"]).stdout).toMatch(/^ripgrep 13/);
    expect(ns.run(["/usr/bin/hello"]).stdout.trim()).toBe("Hello, world!");

    // Every path of the closure carries the cache's signature and none was built here ("ultimate").
    const record = JSON.parse(ns.read("/var/lib/ext/generations/1.json") ?? "{}") as { closure: { paths: string[] } };
    const info = nixPrivate(ns, ["path-info", "--json", ...record.closure.paths], env.NIX_CONFIG);
    expect(info.status).toBe(0);
    // An array up to Nix 2.18, an object keyed by path from 2.19 (test/recorded/nix/README.md).
    type Info = { path: string; signatures?: string[]; ultimate?: boolean };
    const parsed = JSON.parse(info.stdout) as Info[] | Record<string, Omit<Info, "path"> | null>;
    const entries: Info[] = Array.isArray(parsed) ? parsed : Object.entries(parsed).map(([path, v]) => ({ path, ...(v ?? {}) }));
    expect(entries.map((e) => e.path).sort()).toEqual([...record.closure.paths].sort());
    for (const e of entries) {
      expect(e.ultimate ?? false).toBe(false);
      expect(e.signatures ?? []).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${KEY_NAME}:`))]));
    }
  });

  it("a package the cache does not have cannot be built here (the proof that nothing above was built)", () => {
    const r = ns.ext(["add", "greet"], { env });
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/max-jobs/);
    expect(ns.run(["test", "-e", "/usr/bin/greet"]).status).not.toBe(0);
    expect(ns.run(["/usr/bin/rg", "--version"]).status).toBe(0);
  });
});
