import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { plan } from "../../../src/machine/plan.js";
import { SelfRemovalError } from "../../../src/machine/plan.js";
import { layout, type Layout } from "../../../src/base/layout.js";
import { ensureStateDirs, writeCurrent, writeGeneration } from "../../../src/generations/store.js";
import { silentReporter } from "../../../src/base/reporter.js";
import { ExitCode } from "../../../src/errors.js";
import type { TxEnv } from "../../../src/machine/types.js";
import type { GenerationRecord, InstalledPackage } from "../../../src/generations/record.js";

// ext's own packages (a bootstrap image's ext, nodejs and nix: docs/install.md) in the plan: no Nix
// is needed to decide, so a generation record on disk is all the machine there is.

let root: string;
let l: Layout;
const env = (): TxEnv => ({
  layout: l, nix: { store: { root: "/" }, system: "x86_64-linux" }, source: "path:/src", extensionName: "ext",
  compression: "lz4", architecture: "x86-64", command: "ext test", reporter: silentReporter,
});
const pkg = (name: string, self: boolean): InstalledPackage => ({
  name, attr: name, source: "path:/boot", version: "1", outPaths: { out: `/nix/store/${"a".repeat(32)}-${name}-1` }, ...(self ? { self: true } : {}),
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "ext-plan-self-"));
  l = layout(root);
  await ensureStateDirs(l);
  const record: GenerationRecord = {
    recordVersion: 1, id: 1, createdAt: "2026-01-01T00:00:00Z", command: "ext add jq", extensionName: "ext",
    source: { original: "bootstrap:/var/lib/extensions/ext.raw" },
    packages: [pkg("ext", true), pkg("jq", false), pkg("nix", true), pkg("nodejs", true)],
    closure: { paths: [], narSize: 0 }, links: [], image: null, imageKey: null, parent: null,
  };
  await writeGeneration(l, record);
  await writeCurrent(l, 1);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("ext's own packages", () => {
  it("ext remove of ext, nix or nodejs is refused (exit 1, code self-package); of jq it is planned", async () => {
    for (const names of [["ext"], ["nix", "jq"], ["nodejs"]]) {
      const refused = await plan(env(), { kind: "remove", names }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SelfRemovalError);
      expect((refused as SelfRemovalError).exitCode).toBe(ExitCode.user);
      expect((refused as SelfRemovalError).code).toBe("self-package");
      expect((refused as SelfRemovalError).hint).toMatch(/delete \/var\/lib\/extensions\/ext\.raw/);
    }
    const ok = await plan(env(), { kind: "remove", names: ["jq"] });
    expect(ok.kind === "build" && ok.keep.map((p) => p.name)).toEqual(["ext", "nix", "nodejs"]);
  });

  it("a package that replaces ext (ext add ext from another source) is ext's own too", async () => {
    const p = await plan(env(), { kind: "add", packages: [{ name: "ext" }, { name: "ripgrep" }] });
    expect(p.kind === "build" && p.resolve.map((s) => `${s.name}${s.self ? "*" : ""}`)).toEqual(["ext*", "ripgrep"]);
  });

  it("a tools.json (ext apply) that names only tools keeps ext, nix and nodejs", async () => {
    const p = await plan(env(), { kind: "set", packages: [{ name: "jq", source: "path:/boot" }] });
    expect(p.kind).toBe("noop");
    const q = await plan(env(), { kind: "set", packages: [{ name: "ripgrep" }] });
    expect(q.kind === "build" && q.keep.map((k) => k.name).sort()).toEqual(["ext", "nix", "nodejs"]);
  });
});
