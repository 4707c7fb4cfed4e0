import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { EXT } from "../helpers/namespace.js";
import { Sim } from "../unit/boot/sim.js";
import { ensureBuilt } from "../helpers/build.js";

// The boot commands through the real CLI (yargs table, JSON and human output) under --root, on
// generations made by the unit-test machine (records and image files; nothing is merged).

let sim: Sim;

function ext(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync("node", [EXT, "--root", sim.root, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1", ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[], env: Record<string, string> = {}) {
  const r = ext(args, env);
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

beforeAll(async () => {
  ensureBuilt();
  sim = await Sim.create();
  const g1 = await sim.generation(1, ["ripgrep"]);
  await sim.activate(g1);
});
afterAll(async () => {
  await sim?.dispose();
});

describe("ext setup / ext boot / status / generations", () => {
  it("ext setup installs the units with this ext's command and adopts the current generation", async () => {
    const out = ok(["setup", "--boot-tries", "2"]);
    expect(out).toMatch(/ext-boot-select.service: written, enabled/);
    expect(out).toMatch(/boot state created: generation 1 \(current\) adopted as good; a newly activated generation gets 2 boot tries/);
    const unit = await readFile(`${sim.root}/etc/systemd/system/ext-boot-select.service`, "utf8");
    expect(unit).toContain(`ExecStart=${process.execPath} ${EXT} boot select`);
    expect(ok(["setup", "--boot-tries", "2"])).toMatch(/written|unchanged/);
    expect(ok(["setup", "--boot-tries", "2"])).toMatch(/ext-boot-bless.service: unchanged, already enabled[\s\S]*boot state unchanged/);
    expect(ext(["setup", "--boot-tries", "0"]).status).toBe(2);
  });

  it("a new generation is pending; ext generations and ext status show it", async () => {
    const g2 = await sim.generation(2, ["ripgrep", "jq"]);
    await sim.activate(g2);
    const gens = JSON.parse(ok(["generations", "--json"])) as { id: number; boot: unknown }[];
    expect(gens.map((g) => g.boot)).toEqual([{ state: "good" }, { state: "pending", triesLeft: 2 }]);
    expect(ok(["generations"])).toMatch(/BOOT[\s\S]*good[\s\S]*pending \(2 tries left\)/);
    const st = JSON.parse(ok(["status", "--json"])) as { boot: { unitsInstalled: boolean; pending: unknown; lastGood: number } };
    expect(st.boot).toMatchObject({ unitsInstalled: true, state: "ok", pending: { generation: 2, triesLeft: 2 }, lastGood: 1 });
    expect(ok(["status"])).toMatch(/boot: +generation 2 pending \(2 tries left\); last good: 1/);
  });

  it("ext boot select / bless with the command line and boot id given by option or environment", async () => {
    const one = JSON.parse(ok(["boot", "select", "--boot-id", "b1", "--cmdline", "quiet", "--json"])) as { how: string; triesLeft: number };
    expect(one).toMatchObject({ step: "select", generation: 2, how: "pending", triesLeft: 1 });
    const override = ok(["boot", "select"], { EXT_BOOT_ID: "b2", EXT_BOOT_CMDLINE: "ext.generation=previous" });
    expect(override).toMatch(/this boot: generation 1 \(override\)/);
    expect(ok(["boot", "bless"], { EXT_BOOT_ID: "b2" })).toMatch(/one-boot choice/);
    ok(["boot", "select", "--boot-id", "b3", "--cmdline", ""]);
    const reverted = ok(["boot", "select", "--boot-id", "b4", "--cmdline", ""]);
    expect(reverted).toMatch(/this boot: generation 1 \(reverted\)[\s\S]*generation 2 did not reach a good boot in 2 tries: went back to generation 1/);
    expect(ok(["boot", "bless", "--boot-id", "b4"])).toMatch(/generation 1 reached a good boot/);
    const gens = JSON.parse(ok(["generations", "--json"])) as { id: number; current: boolean; boot: { state: string; reason?: string } }[];
    expect(gens.find((g) => g.current)?.id).toBe(1);
    expect(gens[1]!.boot).toMatchObject({ state: "reverted", reason: "generation 2 did not reach a good boot in 2 tries" });
    expect(ok(["generations"])).toMatch(/generation 2 was reverted at boot: generation 2 did not reach a good boot in 2 tries/);
    expect(ok(["status"])).toMatch(/reverted: .* from generation 2 to generation 1: generation 2 did not reach a good boot in 2 tries/);
  });

  it("usage errors: an unknown step", () => {
    expect(ext(["boot", "frobnicate"]).status).toBe(2);
  });

  it("ext setup --remove takes the units out", () => {
    expect(ok(["setup", "--remove"])).toMatch(/removed .*ext-boot-select.service/);
    const st = JSON.parse(ok(["status", "--json"])) as { boot: { unitsInstalled: boolean } };
    expect(st.boot.unitsInstalled).toBe(false);
    expect(ok(["status"])).toMatch(/the boot units are not installed: run 'ext setup'/);
  });
});
