import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { extJson, extOk, openNamespace, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 3, end to end: the real CLI, real Nix on the fixtures, real mkfs.erofs and real
// systemd-sysext merges inside a private mount namespace (never the host's /usr).

let ns: Namespace;

beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
});
afterAll(() => ns?.close());

const ok = (args: string[], env?: Record<string, string>) => extOk(ns, args, env);

const json = <T>(args: string[]): T => extJson<T>(ns, args);

function runsHidden(argv: string[]) {
  return ns.run(argv, { hideNix: true });
}

/** Everything a user could see of ext's state: records, pointer, link target, merged files. */
function snapshot() {
  const gens = json<{ id: number; current: boolean; packages: string[] }[]>(["generations"]);
  const st = json<{ generation: number | null; linked: string | null; merged: boolean }>(["status"]);
  const bins = ns.run(["sh", "-c", "ls /usr/bin | sort"]).stdout;
  const images = ns.run(["sh", "-c", "ls /var/lib/ext/images | sort"]).stdout;
  const leftovers = ns.run(["sh", "-c", "ls -A /var/lib/ext/tmp; ls -A /var/lib/ext | grep -v -e images -e generations -e tmp -e current.json -e lock || true"]).stdout;
  return { gens, st, bins, images, leftovers };
}

describe("add / remove / rollback / generations", () => {
  it("add → tools run from /usr/bin with /nix hidden", () => {
    const r = ok(["add", "ripgrep", "greet"]);
    expect(r.stdout).toMatch(/generation 1 is active/);
    expect(runsHidden(["/usr/bin/rg", "--version"]).stdout).toMatch(/ripgrep/);
    expect(runsHidden(["/usr/bin/greet"]).status).toBe(0);
    const list = json<{ name: string; version: string }[]>(["list"]);
    expect(list.map((p) => p.name).sort()).toEqual(["greet", "ripgrep"]);
    expect(list.find((p) => p.name === "ripgrep")?.version).toBe("13.0.0");
  });

  it("add another → one new generation; remove → gone, others still run; rollback → back", () => {
    ok(["add", "jq"]);
    expect(runsHidden(["/usr/bin/jq", "--version"]).stdout).toMatch(/jq-1\.6/);
    ok(["remove", "jq"]);
    expect(ns.run(["test", "-e", "/usr/bin/jq"]).status).not.toBe(0);
    expect(runsHidden(["/usr/bin/rg", "--version"]).status).toBe(0);
    ok(["rollback"]);
    expect(runsHidden(["/usr/bin/jq", "--version"]).stdout).toMatch(/jq-1\.6/);
    const gens = json<{ id: number; current: boolean; packages: string[] }[]>(["generations"]);
    expect(gens.map((g) => g.id)).toEqual([1, 2, 3]);
    expect(gens.filter((g) => g.current).map((g) => g.id)).toEqual([2]);
    expect(gens[2]!.packages.sort()).toEqual(["greet", "ripgrep"]);
  });

  it("adding what is installed changes nothing", () => {
    const before = snapshot();
    const r = ok(["add", "jq"]);
    expect(r.stdout).toMatch(/nothing to do/);
    expect(snapshot()).toEqual(before);
  });

  it("remove then add back reuses the earlier image (no stage, no pack)", () => {
    const images = ns.run(["sh", "-c", "ls /var/lib/ext/images | wc -l"]).stdout.trim();
    ok(["remove", "jq"]);
    const r = json<{ image: { reused: boolean } }>(["add", "jq"]);
    expect(r.image.reused).toBe(true);
    expect(ns.run(["sh", "-c", "ls /var/lib/ext/images | wc -l"]).stdout.trim()).toBe(images);
  });
});

describe("bad input changes nothing", () => {
  const cases: [string, string[], RegExp][] = [
    ["misspelled package", ["add", "ripgrp"], /unknown package 'ripgrp'.*\n?.*ripgrep/s],
    ["package that fails to build", ["add", "broken"], /broken/],
    ["two packages colliding on a path", ["add", "cowsay-a", "cowsay-b"], /usr\/bin\/moo.*cowsay-a.*cowsay-b|cowsay-b.*cowsay-a/s],
    ["shell injection", ["add", "jq; rm -rf /"], /invalid|not a valid/i],
    ["path escape", ["add", "../x"], /invalid|not a valid/i],
    ["flake injection", ["add", "a#b"], /invalid|not a valid/i],
    ["removing what is not installed", ["remove", "hello"], /not installed: hello/],
  ];
  for (const [what, args, message] of cases) {
    it(what, () => {
      const before = snapshot();
      const r = ns.ext(args);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no stack trace
      expect(snapshot()).toEqual(before);
    });
  }
});

describe("failures and crashes", () => {
  // Each case checks that the tool installed before it still runs afterwards.
  beforeAll(() => {
    ok(["add", "ripgrep"]);
  });

  for (const phase of ["prepare", "realise", "close", "reuse", "stage", "pack", "describe", "verify", "commit", "activate", "check", "finalize"]) {
    it(`a failure at ${phase} leaves the active set and the state unchanged`, () => {
      const before = snapshot();
      const r = ns.ext(["add", "hello"], { env: { EXT_TEST_FAIL_AT: phase } });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`injected failure at ${phase}`));
      expect(snapshot()).toEqual(before);
      expect(runsHidden(["/usr/bin/rg", "--version"]).status).toBe(0);
    });
  }

  for (const phase of ["prepare", "realise", "close", "reuse", "stage", "pack", "describe", "verify", "commit", "activate", "check", "finalize"]) {
    it(`kill -9 during ${phase}, then any ext command recovers`, async () => {
      const before = snapshot();
      const child = ns.spawnExt(["add", "hello"], { env: { EXT_TEST_PAUSE_AT: phase } });
      await waitFor(() => ns.read("/var/lib/ext/journal.json")?.includes(`"phase": "${phase}"`) ?? false);
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const st = ok(["status"]);
      expect(st.stdout).toMatch(/interrupted/);
      ok(["list"]);
      // A state-changing command recovers first and says so.
      const g = ns.ext(["gc"]);
      expect(g.status).toBe(0);
      expect(g.stderr).toMatch(/recovered: (undid|finished)/);
      const after = snapshot();
      if (phase === "finalize") {
        expect(after.gens.find((x) => x.current)?.packages).toContain("hello");
        ok(["remove", "hello"]);
      } else {
        expect(after.gens).toEqual(before.gens);
        expect(after.bins).toEqual(before.bins);
      }
      expect(runsHidden(["/usr/bin/rg", "--version"]).status).toBe(0);
      expect(ns.read("/var/lib/ext/journal.json")).toBeUndefined();
    });
  }

  it("a later add succeeds after all that", () => {
    ok(["add", "hello"]);
    expect(runsHidden(["/usr/bin/hello"]).stdout).toMatch(/Hello, world!/);
    ok(["remove", "hello"]);
  });
});

describe("concurrency and gc", () => {
  it("two adds started together both complete, one after the other", async () => {
    const a = ns.spawnExt(["add", "hello"]);
    const b = ns.spawnExt(["add", "toolbox", "--priority", "1"]);
    const codes = await Promise.all([a, b].map((c) => new Promise<number>((r) => c.once("exit", (code) => r(code ?? -1)))));
    expect(codes).toEqual([0, 0]);
    const names = json<{ name: string }[]>(["list"]).map((p) => p.name);
    expect(names).toContain("hello");
    expect(names).toContain("toolbox");
  });

  it("--no-wait fails at once while another ext holds the lock", async () => {
    const slow = ns.spawnExt(["add", "dash"], { env: { EXT_TEST_PAUSE_AT: "stage" } });
    await waitFor(() => ns.read("/var/lib/ext/journal.json")?.includes('"phase": "stage"') ?? false);
    const r = ns.ext(["add", "jq", "--no-wait"]);
    slow.kill("SIGKILL");
    await new Promise((res) => slow.once("exit", res));
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/another ext is working/);
    ok(["status"]);
    ns.ext(["gc"]);
  });

  it("gc never removes the current or a kept generation's image", () => {
    const gens = json<{ id: number; current: boolean; image: { sha256: string } | null }[]>(["generations"]);
    const current = gens.find((g) => g.current)!;
    const newest = gens.filter((g) => !g.current).at(-1)!;
    ok(["gc", "--keep", "1"]);
    const images = ns.run(["ls", "/var/lib/ext/images"]).stdout;
    expect(images).toContain(current.image!.sha256);
    if (newest.image) expect(images).toContain(newest.image.sha256);
    const after = json<{ id: number }[]>(["generations"]).map((g) => g.id);
    expect(after).toEqual(expect.arrayContaining([current.id, newest.id]));
    expect(after.length).toBe(2);
    expect(runsHidden(["/usr/bin/rg", "--version"]).status).toBe(0);
  });
});

async function waitFor(cond: () => boolean, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}
