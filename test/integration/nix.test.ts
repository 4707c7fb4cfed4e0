// The Nix adapter against a real Nix (Debian 12: 2.8). The test writes its own tiny flake in a temp
// directory, so it depends on nothing but `nix`, `git` and `/bin/sh`: a package with a runtime
// reference to another store path, one with two outputs, a nested package set, one that fails to
// build and one that depends on the failing one. Nothing is skipped: a missing tool fails the test.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { BuildFailedError, InvalidNameError, UnknownPackageError } from "../../src/errors.js";
import {
  closure, ensurePaths, listAttributes, lockSource, nixSystem, nixVersion, physicalPath, realise, search, NixSourceError,
  type NixContext,
} from "../../src/nix/index.js";
import { OFFLINE_NIX_CONFIG, offlineNixEnv } from "../helpers/nix-env.js";

const SYSTEM = nixSystem();
const MARKER = `ext-broken-marker-${process.pid}`;

const FLAKE_NIX = `{
  description = "ext nix adapter test flake";
  outputs = { self }: let
    system = "${SYSTEM}";
    mk = name: script: extra: builtins.derivation ({
      inherit name system; builder = "/bin/sh"; PATH = "/bin:/usr/bin"; args = [ "-c" (script + "; exit 0") ]; # exit 0: test/fixtures/mk.nix (NixOS/nix#2176)
    } // extra);
    dep = mk "extt-dep-1.0" "mkdir -p $out/share; echo dependency > $out/share/dep.txt" { };
    good = mk "extt-good-2.3" "mkdir -p $out/bin; printf '#!/bin/sh\\\\ncat %s/share/dep.txt\\\\n' \${dep} > $out/bin/extt-good; chmod +x $out/bin/extt-good" { }
      // { pname = "extt-good"; version = "2.3";
           meta = { description = "a package that works"; homepage = "https://example.org/good";
                    license = [ { spdxId = "MIT"; shortName = "mit"; } { shortName = "unlicense"; } ]; }; };
    multi = mk "extt-multi-0.1" "mkdir -p $out/bin $man/share/man/man1; echo a > $out/bin/multi; echo b > $man/share/man/man1/multi.1" { outputs = [ "out" "man" ]; };
    broken = mk "extt-broken-1" "echo compiling; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do echo line $i; done; echo '${MARKER}' >&2; exit 3" { };
    needsBroken = mk "extt-needs-1" "echo \${broken} > $out" { };
  in {
    packages.\${system} = { inherit good dep multi broken; needs-broken = needsBroken; };
    legacyPackages.\${system} = { tools = { inherit good; hello = good; }; };
  };
}
`;

let work: string;
let flakeDir: string;
let source: string;
let ctx: NixContext;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), "ext-nix-it-"));
  flakeDir = path.join(work, "flake");
  mkdirSync(flakeDir);
  writeFileSync(path.join(flakeDir, "flake.nix"), FLAKE_NIX);
  source = `path:${flakeDir}`;
  ctx = { store: { root: "/" }, system: SYSTEM, env: offlineNixEnv() };
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("nix adapter (real nix)", () => {
  it("detects the installed Nix version", async () => {
    const v = await nixVersion(ctx);
    expect(v.major).toBe(2);
    expect(v.raw).toMatch(/^nix \(/);
  });

  it("realises a package with metadata, and its closure holds the referenced store path", async () => {
    const [good] = await realise(ctx, [{ name: "good", attr: "good", source: flakeDir }]);
    expect(good).toMatchObject({
      name: "good", attr: "good", source, pname: "extt-good", version: "2.3",
      description: "a package that works", homepage: "https://example.org/good", license: "MIT, unlicense",
    });
    const out = good?.outPaths.out ?? "";
    expect(out).toMatch(/^\/nix\/store\/[a-z0-9]{32}-extt-good-2\.3$/);
    expect(good?.drvPath).toMatch(/-extt-good-2\.3\.drv$/);
    expect(existsSync(path.join(physicalPath(ctx.store, out), "bin/extt-good"))).toBe(true);

    const entries = await closure(ctx, [out]);
    const dep = entries.find((e) => e.path.endsWith("-extt-dep-1.0"));
    expect(dep).toBeDefined();
    expect(entries.find((e) => e.path === out)?.references).toContain(dep?.path);
    for (const e of entries) expect(e.narSize).toBeGreaterThan(0);
    expect(entries.map((e) => e.path)).toEqual([...entries.map((e) => e.path)].sort());
  });

  it("builds several packages in one call; outputs can be chosen; pname/version fall back to the name", async () => {
    const resolved = await realise(ctx, [
      { name: "good", attr: "good", source },
      { name: "multi", attr: "multi", source, outputs: ["out", "man"] },
      { name: "hello", attr: "tools.hello", source },
    ]);
    expect(resolved.map((r) => r.name)).toEqual(["good", "multi", "hello"]);
    const multi = resolved[1];
    expect(Object.keys(multi?.outPaths ?? {}).sort()).toEqual(["man", "out"]);
    expect(multi?.outPaths.man).toMatch(/-extt-multi-0\.1-man$/);
    expect(multi).toMatchObject({ pname: "extt-multi", version: "0.1" });
    expect(multi?.description).toBeUndefined();
    expect(resolved[2]?.outPaths.out).toBe(resolved[0]?.outPaths.out);

    const entries = await closure(ctx, Object.values(multi?.outPaths ?? {}));
    expect(entries).toHaveLength(2);
  });

  it("an unknown name fails before building, with close matches", async () => {
    const error = await realise(ctx, [{ name: "god", attr: "god", source }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownPackageError);
    expect((error as UnknownPackageError).pkg).toBe("god");
    expect((error as UnknownPackageError).suggestions).toEqual(["good"]);
    expect((error as UnknownPackageError).hint).toContain("'good'");
  });

  it("an unknown name inside a nested set is matched within that set", async () => {
    const error = await realise(ctx, [{ name: "helo", attr: "tools.helo", source }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownPackageError);
    expect((error as UnknownPackageError).suggestions).toEqual(["tools.hello"]);
  });

  it("a package set is not a package; a missing output is named", async () => {
    await expect(realise(ctx, [{ name: "tools", attr: "tools", source }])).rejects.toThrow(/is a set of packages/);
    const error = await realise(ctx, [{ name: "good", attr: "good", source, outputs: ["man"] }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidNameError);
    expect((error as InvalidNameError).message).toContain("has no output 'man'");
    expect((error as InvalidNameError).hint).toContain("out");
  });

  it("a failing build names the package and shows the tail of its log", async () => {
    const error = await realise(ctx, [{ name: "good", attr: "good", source }, { name: "broken", attr: "broken", source }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildFailedError);
    const e = error as BuildFailedError;
    expect(e.message).toBe("package 'broken' failed to build (builder exit code 3)");
    expect(e.details).toContain(MARKER);
    expect(e.details).toContain("line 25");
    expect(e.details).not.toContain("compiling"); // only the last 20 lines
    expect(e.hint).toMatch(/nix log \/nix\/store\/.*-extt-broken-1\.drv/);
  });

  it("a dependency's failure is pinned on the requested package that needs it", async () => {
    const error = await realise(ctx, [{ name: "good", attr: "good", source }, { name: "needs", attr: "needs-broken", source }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildFailedError);
    expect((error as BuildFailedError).message).toBe("package 'needs' failed to build: its dependency 'extt-broken-1' failed (builder exit code 3)");
    expect((error as BuildFailedError).details).toContain(MARKER);
  });

  it("lists attributes of packages and legacyPackages together", async () => {
    const names = await listAttributes(ctx, source);
    expect(names).toEqual(["broken", "dep", "good", "multi", "needs-broken", "tools"]);
    expect(await listAttributes(ctx, source, "tools")).toEqual(["good", "hello"]);
  });

  it("searches names and descriptions literally", async () => {
    const results = await search(ctx, source, "works");
    expect(results.map((r) => r.attr)).toEqual(expect.arrayContaining(["good"]));
    expect(results.find((r) => r.attr === "good")).toMatchObject({ pname: "extt-good", version: "2.3", description: "a package that works" });
    expect(await search(ctx, source, "extt.good")).toEqual([]); // '.' is not a wildcard
    expect((await search(ctx, source, "extt-good")).map((r) => r.attr)[0]).toBe("good");
  });

  it("locks path and git sources", async () => {
    const lockedPath = await lockSource(ctx, source);
    expect(lockedPath.original).toBe(source);
    expect(lockedPath.narHash).toMatch(/^sha256-/);
    expect(lockedPath.locked).toContain("narHash=");

    const repo = path.join(work, "repo");
    mkdirSync(repo);
    writeFileSync(path.join(repo, "flake.nix"), readFileSync(path.join(flakeDir, "flake.nix")));
    const git = (...args: string[]) => execFileSync("git", ["-C", repo, "-c", "user.email=t@e", "-c", "user.name=t", ...args], { stdio: "pipe" });
    git("init", "-q");
    git("add", "flake.nix");
    git("commit", "-qm", "init");
    const rev = execFileSync("git", ["-C", repo, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const lockedGit = await lockSource(ctx, `git+file://${repo}`);
    expect(lockedGit.rev).toBe(rev);
    expect(lockedGit.locked).toContain(`rev=${rev}`);
  });

  it("sources that do not exist or are not flakes are clear errors", async () => {
    const missing = await lockSource(ctx, path.join(work, "nope")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NixSourceError);
    expect((missing as NixSourceError).message).toContain("does not exist");

    const empty = path.join(work, "empty");
    mkdirSync(empty);
    const notFlake = await realise(ctx, [{ name: "x", attr: "x", source: empty }]).catch((e: unknown) => e);
    expect(notFlake).toBeInstanceOf(NixSourceError);
    expect((notFlake as NixSourceError).message).toContain("is not a flake");

    const registry = await lockSource(ctx, "nixpkgs").catch((e: unknown) => e);
    expect(registry).toBeInstanceOf(NixSourceError);
  });

  it("ensurePaths accepts present paths and names missing ones", async () => {
    const [good] = await realise(ctx, [{ name: "good", attr: "good", source }]);
    await ensurePaths(ctx, Object.values(good?.outPaths ?? {}));
    await expect(ensurePaths(ctx, ["/nix/store/00000000000000000000000000000000-ext-missing"])).rejects.toThrow(/no longer in the Nix store/);
  });

  it("builds into a chroot store with --store; files are under <root>/nix/store", async () => {
    // Not below /tmp: Nix (≥ 2.34) refuses a store below a world-writable directory, and so does ext.
    const parent = mkdtempSync(path.join(homedir(), ".ext-nix-it-"));
    onTestFinished(() => rmSync(parent, { recursive: true, force: true }));
    const root = path.join(parent, "chroot");
    // The chroot store builds in a sandbox; OFFLINE_NIX_CONFIG makes the host's files visible there.
    const chroot: NixContext = { store: { root }, system: SYSTEM, env: { NIX_CONFIG: OFFLINE_NIX_CONFIG } };
    const [good] = await realise(chroot, [{ name: "good", attr: "good", source }]);
    const out = good?.outPaths.out ?? "";
    expect(out.startsWith("/nix/store/")).toBe(true);
    expect(physicalPath(chroot.store, out)).toBe(path.join(root, out));
    expect(readFileSync(path.join(physicalPath(chroot.store, out), "bin/extt-good"), "utf8")).toContain("-extt-dep-1.0/share/dep.txt");
    const entries = await closure(chroot, [out]);
    expect(entries.map((e) => path.basename(e.path).replace(/^[a-z0-9]{32}-/, ""))).toEqual(expect.arrayContaining(["extt-dep-1.0", "extt-good-2.3"]));
    for (const e of entries) expect(existsSync(physicalPath(chroot.store, e.path))).toBe(true);
  });
});
