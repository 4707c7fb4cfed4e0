import { describe, it, expect } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockFor, lockText, sameLock, pinFromReference, unpinnedReference, installedFromLock } from "../../../src/manifest/lockfile.js";
import { parseLock, parseManifest } from "../../../src/manifest/read.js";
import { resolveManifest, refreshingNix } from "../../../src/manifest/resolve.js";
import { previewSet } from "../../../src/manifest/preview.js";
import { trackedFile, setTrackedFile } from "../../../src/manifest/tracking.js";
import { layout } from "../../../src/base/layout.js";
import type { GenerationRecord, InstalledPackage } from "../../../src/generations/record.js";
import type { NixContext } from "../../../src/nix/types.js";

const REV = "0123456789abcdef0123456789abcdef01234567";
const PINNED = `github:NixOS/nixpkgs/${REV}?narHash=sha256-AbC%2f+x=`;
const PATH_PIN = "path:/srv/pkgs?lastModified=1700000000&narHash=sha256-4+BHs5UWkUKL%2fsA6WXC48L4UaE302SZuDEjhYFNNLBs=";
const store = (hash: string, name: string) => `/nix/store/${hash.repeat(32).slice(0, 32)}-${name}`;
const nix: NixContext = { store: { root: "/" }, system: "x86_64-linux" };

function pkg(name: string, version: string, source: string, hash: string, extra: Partial<InstalledPackage> = {}): InstalledPackage {
  return { name, attr: name, source, pname: name, version, outPaths: { out: store(hash, `${name}-${version}`) }, ...extra };
}

function generation(packages: InstalledPackage[], narSize = 1000): GenerationRecord {
  return {
    recordVersion: 1, id: 7, createdAt: "2025-01-01T00:00:00Z", command: "ext apply", extensionName: "ext",
    source: { original: "nixpkgs" }, packages, closure: { paths: [], narSize }, links: [], image: null, imageKey: null, parent: null,
  };
}

describe("pins read off references", () => {
  it("keeps the '+' and decodes %2f of a narHash", () => {
    expect(pinFromReference(PATH_PIN)).toEqual({ locked: PATH_PIN, narHash: "sha256-4+BHs5UWkUKL/sA6WXC48L4UaE302SZuDEjhYFNNLBs=", lastModified: 1700000000 });
    expect(pinFromReference(`github:NixOS/nixpkgs/${REV}`)).toEqual({ locked: `github:NixOS/nixpkgs/${REV}`, rev: REV });
    expect(pinFromReference("nixpkgs")).toBeUndefined();
    expect(pinFromReference("github:NixOS/nixpkgs/nixos-24.11")).toBeUndefined();
  });

  it("the reference a person wrote is the pinned one without its pin", () => {
    expect(unpinnedReference(PATH_PIN)).toBe("path:/srv/pkgs");
    expect(unpinnedReference("git+https://x.org/r?ref=main&rev=abc&narHash=sha256-x")).toBe("git+https://x.org/r?ref=main");
    expect(unpinnedReference("nixpkgs")).toBe("nixpkgs");
  });
});

describe("the lock", () => {
  const manifest = parseManifest(`{"version": 1, "source": "nixpkgs", "packages": {"rg": {"attr": "ripgrep"}, "jq": {"outputs": ["bin"]}}}`, "/t.json");
  const installed = [
    pkg("rg", "14.1", PINNED, "a", { attr: "ripgrep" }),
    pkg("jq", "1.7", PINNED, "b", { outputs: ["bin"], outPaths: { bin: store("b", "jq-1.7-bin") } }),
    pkg("extra", "1", "nixpkgs", "c"),
  ];
  const pins = new Map([["nixpkgs", { locked: PINNED, rev: REV, narHash: "sha256-AbC/+x=" }]]);

  it("records each package of the file, sorted, and validates against its schema", () => {
    const lock = lockFor(manifest.entries, installed, pins, "x86_64-linux");
    expect(Object.keys(lock.packages)).toEqual(["jq", "rg"]);
    expect(lock.packages["rg"]).toEqual({ attr: "ripgrep", source: "nixpkgs", resolvedFrom: PINNED, pname: "rg", version: "14.1", outPaths: { out: store("a", "rg-14.1") } });
    expect(lock.packages["jq"]!.outputs).toEqual(["bin"]);
    expect(lock.sources).toEqual({ nixpkgs: { locked: PINNED, rev: REV, narHash: "sha256-AbC/+x=" } });
    expect(parseLock(lockText(lock), "/t.lock.json").data).toEqual(lock);
  });

  it("compares by content, not formatting", () => {
    const lock = lockFor(manifest.entries, installed, pins, "x86_64-linux");
    const reordered = JSON.parse(JSON.stringify({ packages: lock.packages, sources: lock.sources, system: lock.system, version: 1 }));
    expect(sameLock(reordered, lock)).toBe(true);
    expect(sameLock(undefined, lock)).toBe(false);
    expect(sameLock({ ...lock, sources: {} }, lock)).toBe(false);
  });

  it("gives back the package as a generation holds it", () => {
    const lock = lockFor(manifest.entries, installed, pins, "x86_64-linux");
    expect(installedFromLock("rg", lock.packages["rg"]!)).toEqual(installed[0]);
  });
});

describe("resolving a tools.json", () => {
  const text = `{"version": 1, "source": "nixpkgs", "packages": {"rg": {"attr": "ripgrep"}, "jq": {}, "hello": {"source": "path:/other"}}}`;
  const manifest = parseManifest(text, "/t.json");
  const installed = [pkg("rg", "14.1", PINNED, "a", { attr: "ripgrep" }), pkg("jq", "1.7", PINNED, "b")];
  const lock = parseLock(lockText(lockFor(manifest.entries, installed, new Map([["nixpkgs", { locked: PINNED }]]), "x86_64-linux")), "/t.lock.json");

  it("keeps what the lock describes and pins only the sources it lacks", async () => {
    const pinned: string[] = [];
    const r = await resolveManifest(manifest, lock, nix, {
      pin: async (s) => (pinned.push(s), { locked: `${s}?narHash=sha256-new` }),
      present: () => true,
    });
    expect(pinned).toEqual(["path:/other"]);
    expect(r.locked.map((p) => p.name)).toEqual(["rg", "jq"]);
    expect(r.toResolve).toEqual(["hello"]);
    expect(r.specs).toEqual([
      { name: "rg", attr: "ripgrep", source: PINNED },
      { name: "jq", attr: "jq", source: PINNED },
      { name: "hello", attr: "hello", source: "path:/other?narHash=sha256-new" },
    ]);
  });

  it("with a complete lock, pins nothing (no Nix at all)", async () => {
    const two = parseManifest(`{"version": 1, "packages": {"rg": {"attr": "ripgrep"}, "jq": {}}}`, "/t.json");
    const r = await resolveManifest(two, lock, nix, { pin: async () => { throw new Error("Nix was called"); }, present: () => true });
    expect(r.toResolve).toEqual([]);
    expect(r.pinned).toEqual([]);
  });

  it("an entry that changed (attr, source, outputs) is resolved again", async () => {
    const changed = parseManifest(`{"version": 1, "packages": {"rg": {"attr": "ripgrep", "outputs": ["out", "man"]}, "jq": {"attr": "jq-1_6"}}}`, "/t.json");
    const r = await resolveManifest(changed, lock, nix, { pin: async () => { throw new Error("unexpected"); }, present: () => true });
    expect(r.locked).toEqual([]);
    expect(r.toResolve).toEqual(["rg", "jq"]);
    expect(r.specs.map((s) => s.source)).toEqual([PINNED, PINNED]);
  });

  it("a locked package whose store paths are gone is rebuilt from the exact reference it came from", async () => {
    const r = await resolveManifest(manifest, lock, nix, { pin: async (s) => ({ locked: s }), present: () => false });
    expect(r.locked).toEqual([]);
    expect(r.specs[0]).toEqual({ name: "rg", attr: "ripgrep", source: PINNED });
  });

  it("a lock for another system: same pinned revisions, packages resolved again for this system", async () => {
    const r = await resolveManifest(manifest, lock, { ...nix, system: "aarch64-linux" }, { pin: async (s) => ({ locked: s }), present: () => true });
    expect(r.locked).toEqual([]);
    expect(r.specs.slice(0, 2).map((s) => s.source)).toEqual([PINNED, PINNED]);
  });

  it("upgrade: pins sources again and resolves the named packages again", async () => {
    const r = await resolveManifest(manifest, lock, nix, {
      refresh: new Set(["nixpkgs"]),
      reresolve: new Set(["rg"]),
      pin: async (s) => ({ locked: `${s}-newest` }),
      present: () => true,
    });
    expect(r.specs.map((s) => s.source)).toEqual(["nixpkgs-newest", PINNED, "path:/other-newest"]);
    expect(r.locked.map((p) => p.name)).toEqual(["jq"]);
  });

  it("upgrade fetches sources again (tarball-ttl = 0), keeping the configured NIX_CONFIG", () => {
    const env = refreshingNix({ ...nix, env: { NIX_CONFIG: "substituters =" } }).env!;
    expect(env["NIX_CONFIG"]).toBe("substituters =\ntarball-ttl = 0\n");
  });
});

describe("the dry-run plan", () => {
  const current = generation([pkg("rg", "13.0", PINNED, "a"), pkg("jq", "1.6", PINNED, "b"), pkg("cowsay", "3", PINNED, "c")]);
  const noNix = { evaluate: async () => { throw new Error("Nix was called"); }, closureSize: async () => { throw new Error("Nix was called"); } };

  it("nothing changed: no Nix", async () => {
    const specs = current.packages.map((p) => ({ name: p.name, attr: p.attr, source: p.source }));
    const p = await previewSet(nix, current, specs, [], noNix);
    expect(p.unchanged).toBe(true);
    expect(p.closure).toEqual({ before: 1000, after: 1000, delta: 0, notBuilt: [] });
  });

  it("added, removed, version changes, closure size delta", async () => {
    const specs = [
      { name: "rg", attr: "rg", source: "new" },
      { name: "jq", attr: "jq", source: PINNED },
      { name: "hello", attr: "hello", source: PINNED },
    ];
    const p = await previewSet(nix, current, specs, [], {
      evaluate: async (s) => ({ name: s.name, version: s.name === "rg" ? "14.1" : "2.12", outPaths: { out: store("d", s.name) } }),
      closureSize: async (paths) => paths.length * 500,
    });
    expect(p.added).toEqual([{ name: "hello", version: "2.12" }]);
    expect(p.removed).toEqual([{ name: "cowsay", version: "3" }]);
    expect(p.changed).toEqual([{ name: "rg", from: "13.0", to: "14.1" }]);
    expect(p.closure).toEqual({ before: 1000, after: 1500, delta: 500, notBuilt: [] });
  });

  it("a package not built yet: its size is unknown, and said so", async () => {
    const specs = [{ name: "rg", attr: "rg", source: PINNED }, { name: "hello", attr: "hello", source: PINNED }];
    const { ExtError } = await import("../../../src/errors.js");
    const p = await previewSet(nix, current, specs, [], {
      evaluate: async (s) => ({ name: s.name, version: "2.12", outPaths: { out: store("e", s.name) } }),
      closureSize: async (paths) => {
        if (paths.some((x) => x.endsWith("-hello"))) throw new ExtError("not in the store");
        return 100;
      },
    });
    expect(p.closure.after).toBeNull();
    expect(p.closure.notBuilt).toEqual(["hello"]);
  });
});

describe("the tracked file", () => {
  it("lives in config.json beside other settings, written only when it changes", async () => {
    const root = mkdtempSync(join(tmpdir(), "ext-track-"));
    try {
      const l = layout(root);
      expect(await trackedFile(l)).toBeNull();
      expect(await setTrackedFile(l, "/home/me/tools.json")).toBe(true);
      writeFileSync(l.configFile, JSON.stringify({ other: 1, trackedFile: "/home/me/tools.json" }));
      const before = statSync(l.configFile).mtimeMs;
      expect(await setTrackedFile(l, "/home/me/tools.json")).toBe(false);
      expect(statSync(l.configFile).mtimeMs).toBe(before);
      expect(await trackedFile(l)).toBe("/home/me/tools.json");
      await setTrackedFile(l, null);
      expect(JSON.parse(readFileSync(l.configFile, "utf8"))).toEqual({ other: 1 });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
