import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { openNamespace, REPO, shOk, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";
import { erofsTree } from "../helpers/erofs-tree.js";
import { MAX_APPENDS } from "../../src/pipeline/pack.js";

// Issue 17: an `ext add` that only adds is packed as the previous image plus the new entries where
// mkfs.erofs can append (erofs-utils ≥ 1.8: the trixie and sid trees), and in full where it cannot
// (Debian 12's 1.5) or when something is removed or replaced. Whichever way, the image must hold the
// same tree as `ext build` of the same packages (always packed in full), pass the same verification,
// merge, and run its programs from /usr/bin. Real CLI, Nix, mkfs.erofs and merges in a namespace.

let ns: Namespace;
let appends: boolean;

beforeAll(async () => {
  ensureBuilt();
  ns = openNamespace();
  const image = (await import(`${REPO}/dist/image/index.js`)) as typeof import("../../src/image/index.js");
  appends = await image.canAppend();
});
afterAll(() => ns?.close());

// Appending is on by default (EXT_APPEND_IMAGES=0 turns it off): these adds take the default path.
const ok = (args: string[]) => {
  const r = ns.ext(args);
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  // The copy of the previous image made ahead (src/machine/steps/prepare.ts) is used up or removed
  // by the time the command ends, whether it appended, packed in full or found the image damaged.
  expect(sh("ls -A /var/lib/ext/tmp 2>/dev/null || true").trim()).toBe("");
  return r;
};
const sh = (script: string) => shOk(ns, script);

interface Image { sha256: string; size: number; appended?: number }

function currentImage(): Image {
  const { generation } = JSON.parse(sh("cat /var/lib/ext/current.json")) as { generation: number };
  return (JSON.parse(sh(`cat /var/lib/ext/generations/${generation}.json`)) as { image: Image }).image;
}

/** The active image holds the tree `ext build` makes from scratch for `pkgs`; returns that build's size. */
function expectSameTreeAsBuild(pkgs: string[]): number {
  ok(["build", ...pkgs, "-o", "/var/lib/fresh.raw", "--quiet"]);
  const active = erofsTree(ns, "/var/lib/extensions/ext.raw");
  expect(active.split("\n").length).toBeGreaterThan(20);
  expect(active).toBe(erofsTree(ns, "/var/lib/fresh.raw"));
  return Number(sh("stat -c %s /var/lib/fresh.raw"));
}

/** The merged programs run with /nix hidden: the image alone carries them. */
function runsFromUsr(commands: string[][]): void {
  for (const [cmd, ...args] of commands) {
    const r = ns.run([`/usr/bin/${cmd!}`, ...args], { hideNix: true });
    expect(r.status, `${cmd}: ${r.stderr}`).toBe(0);
  }
}

describe("appending to the previous image", () => {
  it("an add that only adds appends where mkfs.erofs can, and holds the same tree as a full build", () => {
    ok(["add", "hello"]);
    expect(currentImage().appended).toBeUndefined();
    const before = currentImage();

    const add = ok(["add", "ripgrep", "jq"]);
    const image = currentImage();
    if (appends) {
      expect(image.appended).toBe(1);
      expect(add.stderr).toMatch(/appending \d+ store paths and \d+ entries to generation \d+'s image/);
    } else {
      expect(image.appended).toBeUndefined();
    }
    // The previous generation's image is untouched: its file still has the recorded bytes.
    expect(sh(`sha256sum /var/lib/ext/images/${before.sha256}.raw | cut -d' ' -f1`)).toBe(before.sha256);
    const full = expectSameTreeAsBuild(["hello", "ripgrep", "jq"]);
    runsFromUsr([["hello"], ["rg", "--version"], ["jq", "--version"]]);
    // The add's own verify and check steps passed it (mount, release file, layout; /usr after the
    // merge); fsck.erofs checks every inode and decompresses every file.
    sh("fsck.erofs /var/lib/extensions/ext.raw");
    // Dead space of one append: the previous copies of the directories it changed.
    if (appends) expect(image.size).toBeLessThan(full + 64 * 1024);
  });

  it("a second append builds on the first; the count goes up", () => {
    ok(["add", "greet"]);
    const image = currentImage();
    expect(image.appended).toBe(appends ? 2 : undefined);
    expectSameTreeAsBuild(["hello", "ripgrep", "jq", "greet"]);
    runsFromUsr([["hello"], ["jq", "--version"], ["greet"]]);
  });

  it("a previous image whose bytes changed is not built upon: packed in full", () => {
    const damaged = currentImage();
    // One byte in the middle of the file data, in place: name and size stay, the sha256 does not.
    sh(`f=/var/lib/ext/images/${damaged.sha256}.raw; printf X | dd of=$f bs=1 seek=$(( $(stat -c %s $f) / 2 )) conv=notrunc status=none`);
    ok(["add", "cowsay-a"]);
    expect(currentImage().appended).toBeUndefined();
    expectSameTreeAsBuild(["hello", "ripgrep", "jq", "greet", "cowsay-a"]);
    ok(["remove", "cowsay-a"]); // the set the next test starts from (its image is reused)
  });

  it(`after ${MAX_APPENDS} appends in a row the next add packs in full (the bound on dead space)`, () => {
    const { generation } = JSON.parse(sh("cat /var/lib/ext/current.json")) as { generation: number };
    const file = `/var/lib/ext/generations/${generation}.json`;
    const record = JSON.parse(sh(`cat ${file}`)) as { image: Image };
    // As if the current image were the last of MAX_APPENDS appends (the count is all ext looks at).
    sh(`cat > ${file} <<'EOF'\n${JSON.stringify({ ...record, image: { ...record.image, appended: MAX_APPENDS } })}\nEOF`);
    ok(["add", "cowsay-a"]);
    expect(currentImage().appended).toBeUndefined();
    expectSameTreeAsBuild(["hello", "ripgrep", "jq", "greet", "cowsay-a"]);
    ok(["remove", "cowsay-a"]);
  });

  it("removing packs in full (an append cannot remove an entry)", () => {
    ok(["remove", "jq"]);
    expect(currentImage().appended).toBeUndefined();
    expectSameTreeAsBuild(["hello", "ripgrep", "greet"]);
    runsFromUsr([["hello"], ["greet"]]);
  });

  it("EXT_APPEND_IMAGES=0 packs an add that only adds in full; without it the next one appends", () => {
    // Sets no earlier generation had: an image made before for the same key would be reused instead.
    const r = ns.ext(["add", "cowsay-a"], { env: { EXT_APPEND_IMAGES: "0" } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/packing/);
    expect(r.stderr).not.toMatch(/appending/);
    expect(currentImage().appended).toBeUndefined();
    ok(["add", "archives"]);
    expect(currentImage().appended).toBe(appends ? 1 : undefined);
    expectSameTreeAsBuild(["hello", "ripgrep", "greet", "cowsay-a", "archives"]);
  });

  it("ext build is always packed in full: the same bytes for the same packages", () => {
    ok(["build", "hello", "ripgrep", "-o", "/var/lib/a.raw", "--quiet"]);
    ok(["build", "hello", "ripgrep", "-o", "/var/lib/b.raw", "--quiet"]);
    const [a, b] = sh("sha256sum /var/lib/a.raw /var/lib/b.raw | cut -d' ' -f1").split("\n");
    expect(a).toBe(b);
  });
});
