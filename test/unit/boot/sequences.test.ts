import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { readFile, writeFile, unlink, stat } from "node:fs/promises";
import { Sim } from "./sim.js";
import { setupBoot } from "../../../src/boot/setup.js";
import { readBootState, goodBackupFile, type BootState } from "../../../src/boot/state.js";
import { bootSummary, generationBootLabels, formatBootSummary } from "../../../src/boot/report.js";
import { deleteGeneration } from "../../../src/generations/store.js";
import { imagePath } from "../../../src/base/layout.js";
import { writeJournal } from "../../../src/base/journal.js";
import { linkActiveImage } from "../../../src/sysext/link.js";

// Issue 5: the selector and bless driven through whole boot sequences under a temporary --root.

let sim: Sim;
beforeEach(async () => {
  sim = await Sim.create();
});
afterEach(async () => {
  await sim.dispose();
});

async function state(): Promise<BootState> {
  const r = await readBootState(sim.l);
  if (r.kind !== "ok") throw new Error(`boot state ${r.kind}`);
  return r.state;
}

async function setup(tries = 3) {
  return setupBoot(sim.l, { extensionName: "ext", extCommand: "/usr/bin/node /opt/ext/bin/ext.js", tries, now: sim.now() });
}

/** gen 1 (rg) active and adopted as good by setup, then gen 2 (rg, jq) activated. */
async function twoGenerations(tries = 3) {
  const g1 = await sim.generation(1, ["rg"]);
  await sim.activate(g1);
  await setup(tries);
  const g2 = await sim.generation(2, ["rg", "jq"]);
  await sim.activate(g2);
  return { g1, g2, img1: g1.image!.sha256, img2: g2.image!.sha256 };
}

describe("switch → boots without bless → reverted", () => {
  it("counts the tries down, then reverts persistently to the last good generation and says why", async () => {
    const { img1, img2 } = await twoGenerations(3);
    expect((await state()).pending).toMatchObject({ generation: 2, triesLeft: 3 });

    for (const left of [2, 1, 0]) {
      const b = await sim.boot({ good: false });
      expect(b.select).toMatchObject({ generation: 2, how: "pending", triesLeft: left });
      expect(b.merged).toBe(img2);
    }
    const r = await sim.boot({ good: false });
    expect(r.select).toMatchObject({ generation: 1, how: "reverted", revertedTo: 1 });
    expect(r.merged).toBe(img1);
    expect(await sim.current()).toBe(1);
    const s = await state();
    expect(s.pending).toBeNull();
    expect(s.reverts.at(-1)).toMatchObject({ from: 2, to: 1, reason: "generation 2 did not reach a good boot in 3 tries" });

    // Shown by ext generations (labels) and ext status (summary).
    const labels = generationBootLabels(s, [{ id: 1, image: img1 }, { id: 2, image: img2 }]);
    expect(labels.get(1)).toEqual({ state: "good" });
    expect(labels.get(2)).toMatchObject({ state: "reverted", reason: "generation 2 did not reach a good boot in 3 tries" });
    const summary = await bootSummary(sim.l);
    expect(summary?.lastRevert).toMatchObject({ from: 2, to: 1 });
    expect(formatBootSummary(summary).join("\n")).toMatch(/reverted: .* from generation 2 to generation 1: generation 2 did not reach a good boot in 3 tries/);

    // The revert stays: the next boots use generation 1, which is good, and bless confirms it.
    const next = await sim.boot({ good: true });
    expect(next.select).toMatchObject({ generation: 1, how: "current" });
    expect(next.bless?.status).toBe("blessed");
    expect(next.merged).toBe(img1);
  });

  it("with one try: the first bad boot uses it, the second reverts", async () => {
    const { img1, img2 } = await twoGenerations(1);
    expect((await sim.boot({ good: false })).merged).toBe(img2);
    const r = await sim.boot({ good: false });
    expect(r.select.how).toBe("reverted");
    expect(r.merged).toBe(img1);
  });

  it("without any good generation, the revert goes to the base system (no ext extension)", async () => {
    await setup(1); // nothing current: nothing adopted
    const g1 = await sim.generation(1, ["rg"]);
    await sim.activate(g1);
    await sim.boot({ good: false });
    const r = await sim.boot({ good: false });
    expect(r.select).toMatchObject({ generation: null, how: "reverted", revertedTo: null });
    expect(r.merged).toBeNull();
    expect(await sim.current()).toBeNull();
    expect((await state()).reverts.at(-1)).toMatchObject({ from: 1, to: null });
  });
});

describe("switch → boot → bless → stays", () => {
  it("a blessed generation is good and is used at every later boot without counting", async () => {
    const { img2 } = await twoGenerations(2);
    const first = await sim.boot({ good: true });
    expect(first.select).toMatchObject({ generation: 2, how: "pending", triesLeft: 1 });
    expect(first.bless).toMatchObject({ status: "blessed", generation: 2 });
    expect((await state()).pending).toBeNull();
    for (let i = 0; i < 4; i++) {
      const b = await sim.boot({ good: false }); // later bad boots do not matter: 2 is good
      expect(b.select).toMatchObject({ generation: 2, how: "current" });
      expect(b.merged).toBe(img2);
    }
    expect(await sim.current()).toBe(2);
    const labels = generationBootLabels(await state(), [{ id: 2, image: img2 }]);
    expect(labels.get(2)).toEqual({ state: "good" });
  });

  it("bless is idempotent and only blesses the boot the selector ran in", async () => {
    await twoGenerations();
    await sim.boot({ good: true });
    const again = await (await import("../../../src/boot/bless.js")).blessBoot(sim.l, { bootId: `boot${sim.boots}` });
    expect(again.status).toBe("already");
    const other = await (await import("../../../src/boot/bless.js")).blessBoot(sim.l, { bootId: "someotherboot" });
    expect(other.status).toBe("skipped");
  });

  it("a generation activated after the boot stays pending when the earlier boot is blessed", async () => {
    const { g1 } = await twoGenerations();
    const bootId = `boot${sim.boots + 1}`;
    await sim.boot({ good: false });
    // ext rollback during this boot, before boot-complete: the booted generation (2) is blessed, the pending one is 1? No: 1 is good.
    const g3 = await sim.generation(3, ["jq"]);
    await sim.activate(g3);
    const { blessBoot } = await import("../../../src/boot/bless.js");
    expect(await blessBoot(sim.l, { bootId })).toMatchObject({ status: "blessed", generation: 2 });
    expect((await state()).pending).toMatchObject({ generation: 3, triesLeft: 3 });
    expect(g1.id).toBe(1);
  });

  it("switching back to a good generation does not put it on trial; an empty set never is", async () => {
    const { g1 } = await twoGenerations();
    await sim.activate(g1); // ext rollback
    expect((await state()).pending).toBeNull();
    const empty = await sim.generation(3, []);
    await sim.activate(empty); // ext remove everything
    expect((await state()).pending).toBeNull();
    const b = await sim.boot({ good: false });
    expect(b.select).toMatchObject({ generation: 3, how: "current" });
    expect(b.merged).toBeNull();
  });

  it("running the selector twice in one boot counts one try", async () => {
    await twoGenerations(3);
    await sim.boot({ good: false });
    const { selectBoot } = await import("../../../src/boot/select.js");
    const { recoverAtBoot } = await import("../../../src/machine/recover.js");
    const again = await selectBoot(sim.l, { extensionName: "ext", recover: recoverAtBoot, cmdline: "", bootId: `boot${sim.boots}` });
    expect(again).toMatchObject({ generation: 2, how: "pending", triesLeft: 2 });
    expect((await state()).pending?.triesLeft).toBe(2);
  });
});

describe("kernel command line: this boot only", () => {
  it("ext.generation=N uses N through /run/extensions and leaves the persistent choice and the tries alone", async () => {
    const { img1, img2 } = await twoGenerations(3);
    const linkBefore = (await stat(sim.l.extensionsDir + "/ext.raw")).ino;
    const b = await sim.boot({ good: true, cmdline: "root=/dev/vda ext.generation=1 quiet" });
    expect(b.select).toMatchObject({ generation: 1, how: "override", runtime: "image" });
    expect(b.merged).toBe(img1);
    expect(b.bless?.status).toBe("skipped"); // a one-boot choice is not blessed
    expect((await stat(sim.l.extensionsDir + "/ext.raw")).ino).toBe(linkBefore);
    expect(await sim.current()).toBe(2);
    expect((await state()).pending).toMatchObject({ generation: 2, triesLeft: 3 });

    const next = await sim.boot({ good: false });
    expect(next.select).toMatchObject({ generation: 2, how: "pending", triesLeft: 2 });
    expect(next.merged).toBe(img2);
  });

  it("ext.generation=previous uses the last good generation other than the current one", async () => {
    const { img1 } = await twoGenerations();
    const b = await sim.boot({ good: false, cmdline: "ext.generation=previous" });
    expect(b.select).toMatchObject({ generation: 1, how: "override" });
    expect(b.merged).toBe(img1);
  });

  it("ext.generation=previous without any good generation: the newest older one", async () => {
    await setup();
    const g1 = await sim.generation(1, ["rg"]);
    await sim.activate(g1);
    const g2 = await sim.generation(2, ["jq"]);
    await sim.activate(g2);
    const b = await sim.boot({ good: false, cmdline: "ext.generation=previous" });
    expect(b.select).toMatchObject({ generation: 1, how: "override" });
    expect(b.merged).toBe(g1.image!.sha256);
  });

  it("ext.disable hides ext's extension this boot only", async () => {
    const { img2 } = await twoGenerations();
    const b = await sim.boot({ good: true, cmdline: "ext.disable" });
    expect(b.select).toMatchObject({ generation: null, how: "disabled", runtime: "mask" });
    expect(b.merged).toBeNull();
    expect((await state()).pending?.triesLeft).toBe(3);
    const next = await sim.boot({ good: false });
    expect(next.merged).toBe(img2);
  });

  it("an unknown generation on the command line falls back to the usual choice, with a message", async () => {
    const { img2 } = await twoGenerations();
    const b = await sim.boot({ good: false, cmdline: "ext.generation=9 ext.generation=banana" });
    expect(b.select).toMatchObject({ generation: 2, how: "pending" });
    expect(b.merged).toBe(img2);
    expect(b.select.messages.join("\n")).toMatch(/ext.generation=9: generation 9 does not exist; the usual choice applies/);
    expect(b.select.messages.join("\n")).toMatch(/ignored kernel command line option\(s\): ext.generation=banana/);
  });
});

describe("damaged or missing boot state → the last good generation, and a message", () => {
  it("a corrupt boot.json: set aside, reverted to the last good (kept in the backup), said why", async () => {
    const { img1 } = await twoGenerations();
    await writeFile(sim.l.bootStateFile, "{ this is not json");
    expect((await bootSummary(sim.l))?.state).toBe("damaged");
    const b = await sim.boot({ good: false });
    expect(b.select).toMatchObject({ generation: 1, how: "reverted", revertedTo: 1 });
    expect(b.merged).toBe(img1);
    expect(b.select.messages.join("\n")).toMatch(/the boot state file is not valid JSON \(generation 2 was not known good\): went back to generation 1/);
    expect(await readFile(sim.l.bootStateFile + ".damaged", "utf8")).toBe("{ this is not json");
    const s = await state();
    expect(s.reverts.at(-1)).toMatchObject({ from: 2, to: 1 });
    expect(formatBootSummary(await bootSummary(sim.l)).join("\n")).toMatch(/boot state file is not valid JSON/);
  });

  it("a boot.json of the wrong shape counts as damaged", async () => {
    const { img1 } = await twoGenerations();
    await writeFile(sim.l.bootStateFile, JSON.stringify({ version: 1, good: "yes" }));
    const b = await sim.boot({ good: false });
    expect(b.merged).toBe(img1);
    expect(b.select.messages.join("\n")).toMatch(/the boot state file has no extension name/);
  });

  it("a missing boot.json: the last good generation from the backup", async () => {
    const { img1 } = await twoGenerations();
    await unlink(sim.l.bootStateFile);
    const b = await sim.boot({ good: false });
    expect(b.select).toMatchObject({ generation: 1, how: "reverted" });
    expect(b.merged).toBe(img1);
    expect(b.select.messages.join("\n")).toMatch(/the boot state file was missing/);
  });

  it("a missing boot.json when the current generation is the good one: it stays", async () => {
    const { g1, img1 } = await twoGenerations();
    await sim.boot({ good: true }); // 2 becomes good
    await unlink(sim.l.bootStateFile);
    const b = await sim.boot({ good: false });
    expect(b.select).toMatchObject({ generation: 2, how: "current" });
    expect(b.select.messages.join("\n")).toMatch(/generation 2 is known good and stays/);
    expect(g1.image!.sha256).toBe(img1);
  });

  it("both files gone: nothing is known good, the current generation is on trial (default tries)", async () => {
    const { img2 } = await twoGenerations(2);
    await unlink(sim.l.bootStateFile);
    await unlink(goodBackupFile(sim.l));
    const b = await sim.boot({ good: false });
    expect(b.select).toMatchObject({ generation: 2, how: "pending", triesLeft: 2 });
    expect(b.merged).toBe(img2);
    expect(b.select.messages.join("\n")).toMatch(/no generation is known good: generation 2 gets 3 boot tries/);
  });

  it("the configured tries survive a lost boot.json (kept in the backup)", async () => {
    await twoGenerations(2);
    await unlink(sim.l.bootStateFile);
    await writeFile(sim.l.currentFile, JSON.stringify({ generation: 1 }));
    await sim.boot({ good: false });
    expect((await state()).tries).toBe(2);
  });
});

describe("the last good generation when generations were gc'd", () => {
  it("a gc'd good record: the newest generation with the same image", async () => {
    const { img1 } = await twoGenerations(1);
    const g3 = await sim.generation(3, ["rg"]); // same set as 1, e.g. remove jq later
    expect(g3.image!.sha256).toBe(img1);
    const g4 = await sim.generation(4, ["fd"]);
    await sim.activate(g4);
    await deleteGeneration(sim.l, 1);
    await sim.boot({ good: false });
    const r = await sim.boot({ good: false });
    expect(r.select).toMatchObject({ generation: 3, how: "reverted" });
    expect(r.merged).toBe(img1);
    expect(await sim.current()).toBe(3);
  });

  it("a good generation whose image is gone is skipped for an older good one", async () => {
    const g1 = await sim.generation(1, ["rg"]);
    await sim.activate(g1);
    await setup(1);
    const g2 = await sim.generation(2, ["rg", "jq"]);
    await sim.activate(g2);
    await sim.boot({ good: true }); // 2 good now (last good)
    const g3 = await sim.generation(3, ["broken"]);
    await sim.activate(g3);
    await deleteGeneration(sim.l, 2);
    await unlink(imagePath(sim.l, g2.image!.sha256));
    await sim.boot({ good: false });
    const r = await sim.boot({ good: false });
    expect(r.select).toMatchObject({ generation: 1, how: "reverted" });
    expect(r.merged).toBe(g1.image!.sha256);
  });
});

describe("state left by an interrupted transaction", () => {
  it("a journal at boot is undone before choosing (no merge: systemd-sysext.service does that)", async () => {
    const { g2, img1, img2 } = await twoGenerations();
    await sim.boot({ good: true }); // 2 good
    // ext add was killed during activate: link switched to 3, pointer still 2.
    const g3 = await sim.generation(3, ["new"]);
    await linkActiveImage(sim.l, "ext", imagePath(sim.l, g3.image!.sha256));
    await writeJournal(sim.l, {
      txid: "x", pid: 1, command: "ext add new", startedAt: "", phase: "activate", extensionName: "ext",
      previousGeneration: 2, previousImage: img2, nextGeneration: 3, createdGeneration: true, nextImage: g3.image!.sha256, temp: [],
    });
    const b = await sim.boot({ good: false });
    expect(b.select).toMatchObject({ generation: 2, how: "current" });
    expect(b.select.messages.join("\n")).toMatch(/undid the interrupted 'ext add new'/);
    expect(b.merged).toBe(img2);
    expect(g2.id).toBe(2);
    expect(img1).not.toBe(img2);
  });

  it("ext used before ext setup: the current generation it does not know is on trial", async () => {
    const { g1 } = await twoGenerations();
    const g3 = await sim.generation(3, ["x"]);
    // activated by something that did not mark it (e.g. finished by crash recovery)
    await linkActiveImage(sim.l, "ext", imagePath(sim.l, g3.image!.sha256));
    await writeFile(sim.l.currentFile, JSON.stringify({ generation: 3 }));
    const b = await sim.boot({ good: false });
    expect(b.select).toMatchObject({ generation: 3, how: "pending", triesLeft: 2 });
    expect(g1.id).toBe(1);
  });
});

describe("ext setup's boot state", () => {
  it("adopts the current generation as good, keeps its state on a second run, changes the tries on request", async () => {
    const g1 = await sim.generation(1, ["rg"]);
    await sim.activate(g1);
    const first = await setup(3);
    expect(first).toMatchObject({ bootState: "created", adopted: 1, tries: 3 });
    expect((await state()).good).toEqual([expect.objectContaining({ generation: 1, adopted: true })]);
    const before = await readFile(sim.l.bootStateFile, "utf8");
    const second = await setupBoot(sim.l, { extensionName: "ext", extCommand: "/usr/bin/node /opt/ext/bin/ext.js" });
    expect(second.bootState).toBe("unchanged");
    expect(second.units.every((u) => !u.written && !u.linked)).toBe(true);
    expect(await readFile(sim.l.bootStateFile, "utf8")).toBe(before);
    const third = await setup(5);
    expect(third).toMatchObject({ bootState: "updated", tries: 5 });
  });
});
