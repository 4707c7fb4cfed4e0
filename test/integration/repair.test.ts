import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import { EXT, REPO, extEnv, openNamespace, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";
import { crashProblem, extOk } from "../helpers/faults.js";
import { expectValid } from "../unit/cli/schemas.js";
import { erofsTree } from "../helpers/erofs-tree.js";

// `ext repair` on the real CLI in a private namespace: one case per class of repair (src/repair/).
// Each starts from generations 1 = {greet} and 2 = {greet, hello} with 2 current and merged. Both are
// full packs (EXT_APPEND_IMAGES=0): repair proves a full pack by its bytes, the same as its record's.
// The last case adds generation 3 by appending, the default, and repairs that.

let ns: Namespace;
let appends: boolean;
const S = "/var/lib/ext";
const FULL = { env: { EXT_APPEND_IMAGES: "0" } };

beforeAll(async () => {
  ensureBuilt();
  ns = openNamespace();
  const image = (await import(`${REPO}/dist/image/index.js`)) as typeof import("../../src/image/index.js");
  appends = await image.canAppend();
  extOk(ns, ["add", "greet"], FULL);
  extOk(ns, ["add", "hello"], FULL);
});
afterAll(() => ns?.close());

const ok = (args: string[]): RunOutput => extOk(ns, args);

function sh(script: string): RunOutput {
  return ns.run(["sh", "-c", script]);
}

interface Status { generation: number | null; merged: boolean; linkedMatchesGeneration: boolean; linked: string | null }
const status = () => JSON.parse(ok(["status", "--json"]).stdout) as Status;
const imageOf = (id: number) => {
  const gens = JSON.parse(ok(["generations", "--json"]).stdout) as { id: number; image: { sha256: string } }[];
  return gens.find((g) => g.id === id)!.image.sha256;
};
const sha256 = (file: string) => sh(`sha256sum ${file}`).stdout.split(" ")[0];

interface RepairJson {
  fixed: string[];
  movedAside: { from: string; to: string; why: string }[];
  needsYou: { problem: string; command: string }[];
  damagedDir: string | null;
}

/** Runs ext repair (human output and, from the same state, nothing more to do with --json). */
function repair(): { r: RunOutput; json: RepairJson } {
  const r = ns.ext(["repair"]);
  expect(crashProblem("ext repair", r)).toBeNull();
  const again = ns.ext(["repair", "--json"]);
  expect(crashProblem("ext repair --json", again)).toBeNull();
  const json = JSON.parse(again.stdout) as RepairJson;
  expectValid("repair", json);
  return { r, json };
}

/** The state works: generation 2 current, its image linked and merged, its programs run. */
function expectWhole(generation = 2) {
  expect(status()).toMatchObject({ generation, merged: true, linkedMatchesGeneration: true });
  expect(ns.run(["/usr/bin/greet"], { hideNix: true }).status).toBe(0);
  if (generation === 2) expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout).toMatch(/Hello, world!/);
}

function flipMiddleByte(file: string) {
  expect(ns.run(["node", "-e", `
    const fs = require("fs"); const f = process.argv[1];
    const fd = fs.openSync(f, "r+"); const at = Math.floor(fs.fstatSync(fd).size / 2);
    const b = Buffer.alloc(1); fs.readSync(fd, b, 0, 1, at); b[0] ^= 0xff; fs.writeSync(fd, b, 0, 1, at); fs.closeSync(fd);`, file]).status).toBe(0);
}

beforeEach(() => {
  if (status().generation !== 2) ok(["rollback", "--to", "2"]);
  expectWhole();
});

describe("ext repair", () => {
  it("nothing wrong: says so, exit 0", () => {
    const { r, json } = repair();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/nothing to repair/);
    expect(json).toMatchObject({ fixed: [], movedAside: [], needsYou: [], damagedDir: null });
  });

  it("needs root", () => {
    const r = ns.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "node", EXT, "repair"], { env: extEnv() });
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/needs root/);
  });

  it("an unfinished journal: recovered (a kill during stage is undone)", async () => {
    const child = ns.spawnExt(["add", "jq"], { env: { EXT_TEST_PAUSE_AT: "stage" } });
    const start = Date.now();
    while (!(ns.read(`${S}/journal.json`)?.includes('"phase": "stage"') ?? false)) {
      if (Date.now() - start > 60_000) throw new Error("ext add did not reach stage");
      await new Promise((res) => setTimeout(res, 20));
    }
    child.kill("SIGKILL");
    await new Promise((res) => child.once("exit", res));
    const { r } = repair();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fixed: undid the interrupted 'ext add jq'/);
    expect(ns.read(`${S}/journal.json`)).toBeUndefined();
    expectWhole();
  });

  it("leftovers: swept", () => {
    sh(`mkdir -p ${S}/tmp/stage-x/usr && echo x > ${S}/tmp/.pack-1.raw.1.0badc0de.tmp && echo x > ${S}/.current.json.1.0badc0de.tmp`);
    const { r } = repair();
    expect(r.stdout).toMatch(/fixed: removed 3 leftover temporary file\(s\)/);
    expect(sh(`ls -A ${S}/tmp`).stdout).toBe("");
    expectWhole();
  });

  it("a link that does not match current.json: the current image is linked and merged again", () => {
    sh(`ln -f ${S}/images/${imageOf(1)}.raw /var/lib/extensions/ext.raw && systemd-sysext refresh`);
    expect(status().linkedMatchesGeneration).toBe(false);
    const { r } = repair();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/fixed: linked generation 2's image/);
    expect(r.stdout).toMatch(/fixed: merged generation 2 into \/usr/);
    expectWhole();
  });

  it("a merge that is gone: merged again", () => {
    sh("systemd-sysext unmerge");
    expect(status().merged).toBe(false);
    const { r } = repair();
    expect(r.stdout).toMatch(/fixed: merged generation 2 into \/usr/);
    expectWhole();
  });

  for (const which of [2, 1]) {
    it(`a flipped byte in generation ${which}'s image: packed again from its store paths, the same bytes (sha256), the damaged file kept`, () => {
      const sha = imageOf(which);
      const file = `${S}/images/${sha}.raw`;
      flipMiddleByte(file);
      expect(sha256(file)).not.toBe(sha);
      const { r, json } = repair();
      expect(r.status, r.stderr + r.stdout).toBe(0);
      expect(r.stdout).toContain(`fixed: packed the image of generation ${which} again from its store paths: ${file}`);
      expect(sha256(file)).toBe(sha);
      // Moved aside, not deleted: the damaged bytes are in ext's damaged/ directory, named in the output.
      const moved = r.stdout.match(/now (\S+)/)?.[1];
      expect(moved).toMatch(new RegExp(`^${S}/damaged/[^/]+/var/lib/ext/images/${sha}\\.raw$`));
      expect(sha256(moved!)).not.toBe(sha);
      expect(r.stdout).toMatch(/damaged files are kept in \/var\/lib\/ext\/damaged\//);
      expect(json.needsYou).toEqual([]);
      expectWhole();
      if (which === 1) {
        ok(["rollback", "--to", "1"]);
        expectWhole(1);
      }
    });
  }

  it("a record that is garbage: moved aside (never deleted), the rest works", () => {
    sh(`cp ${S}/generations/1.json /tmp/g1.keep && head -c 300 /dev/urandom > ${S}/generations/1.json && sha256sum ${S}/generations/1.json > /tmp/g1.sum`);
    expect(ns.ext(["generations"]).status).not.toBe(0);
    const { r } = repair();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`moved aside: ${S}/generations/1.json: the state file ${S}/generations/1.json is not valid JSON`);
    const moved = r.stdout.match(/now (\S+)/)![1]!;
    expect(sha256(moved)).toBe(sh("cat /tmp/g1.sum").stdout.split(" ")[0]);
    ok(["generations"]);
    expectWhole();
    sh(`cp /tmp/g1.keep ${S}/generations/1.json`);
  });

  it("current.json naming a generation that does not exist: set aside, and the command to choose one is named (and works)", () => {
    sh(`echo '{"generation": 99}' > ${S}/current.json`);
    const { r, json } = repair();
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`moved aside: ${S}/current.json: it names generation 99, which has no readable record`);
    expect(r.stdout).toMatch(/needs you: which generation is current cannot be told .*the image linked now is generation 2's/);
    expect(json.needsYou[0]!.command).toMatch(/^sudo ext rollback --to 2/);
    ok(["rollback", "--to", "2"]);
    expectWhole();
    const after = repair();
    expect(after.r.status).toBe(0);
  });

  it("the current record damaged: it and current.json are set aside; rollback --to 1 is named and works", () => {
    sh(`cp ${S}/generations/2.json /tmp/g2.keep && echo '{}' > ${S}/generations/2.json`);
    const { r, json } = repair();
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`moved aside: ${S}/generations/2.json`);
    expect(r.stdout).toContain(`moved aside: ${S}/current.json: it names generation 2, which has no readable record`);
    expect(json.needsYou[0]!.command).toMatch(/^sudo ext rollback --to 1/);
    ok(["rollback", "--to", "1"]);
    expectWhole(1);
    sh(`cp /tmp/g2.keep ${S}/generations/2.json`);
  });

  it("a damaged journal, a lock that is a symlink, tmp/ that is a file: each moved aside; everything works again", () => {
    sh(`echo garbage > ${S}/journal.json && rm -f ${S}/lock && ln -s /tmp/elsewhere-lock ${S}/lock && rm -rf ${S}/tmp && echo x > ${S}/tmp`);
    expect(ns.ext(["gc"]).status).not.toBe(0);
    const { r } = repair();
    expect(r.status, r.stderr).toBe(0);
    for (const f of ["journal.json", "lock", "tmp"]) expect(r.stdout).toContain(`moved aside: ${S}/${f}:`);
    ok(["gc"]);
    expectWhole();
  });

  it("a flipped byte in an appended generation's image: packed in full, checked entry for entry against its stage, its records name the new bytes", () => {
    interface Image { sha256: string; size: number; compression: string; appended?: number }
    const record = () => JSON.parse(sh(`cat ${S}/generations/3.json`).stdout) as { image: Image };
    ok(["add", "jq"]); // generation 3, the default path
    if (!appends) {
      // This mkfs.erofs cannot append (erofs-utils 1.5): an appended image is made as one would be,
      // the same tree in other bytes (packed again from the extracted image under another UUID),
      // named by the record with its append count. The trixie and sid trees append for real.
      const full = record().image;
      const made = sh(`set -e; rm -rf /tmp/sim /tmp/sim.raw; fsck.erofs --extract=/tmp/sim ${S}/images/${full.sha256}.raw >/dev/null
        mkfs.erofs --quiet -x-1 --all-root -T0 -U 6f0b4f52-0000-4000-8000-000000000017 /tmp/sim.raw /tmp/sim; rm -rf /tmp/sim
        sha=$(sha256sum /tmp/sim.raw | cut -d' ' -f1); mv /tmp/sim.raw ${S}/images/$sha.raw; echo $sha $(stat -c %s ${S}/images/$sha.raw)`);
      expect(made.status, made.stderr).toBe(0);
      const [sha, size] = made.stdout.trim().split(" ");
      expect(sha).not.toBe(full.sha256);
      sh(`cat > ${S}/generations/3.json <<'EOF'\n${JSON.stringify({ ...record(), image: { ...full, sha256: sha, size: Number(size), appended: 1 } })}\nEOF`);
      ok(["rollback", "--to", "2"]);
      sh(`rm ${S}/images/${full.sha256}.raw`);
      ok(["rollback", "--to", "3"]);
    }
    const before = record().image;
    expect(before.appended).toBeGreaterThan(0);
    const file = `${S}/images/${before.sha256}.raw`;
    flipMiddleByte(file);
    const { r, json } = repair();
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const after = record().image;
    expect(after.sha256).not.toBe(before.sha256);
    expect(after.appended).toBeUndefined();
    expect(after.compression).toBe(before.compression);
    const fresh = `${S}/images/${after.sha256}.raw`;
    expect(r.stdout).toContain(`fixed: packed the image of generation 3 again from its store paths, in full: ${fresh}`);
    expect(sha256(fresh)).toBe(after.sha256);
    expect(Number(sh(`stat -c %s ${fresh}`).stdout)).toBe(after.size);
    // The damaged file moved aside, not deleted; nothing left to do (the --json run found nothing).
    const moved = r.stdout.match(/now (\S+)/)?.[1];
    expect(moved).toMatch(new RegExp(`^${S}/damaged/[^/]+/var/lib/ext/images/${before.sha256}\\.raw$`));
    expect(json).toMatchObject({ fixed: [], needsYou: [] });
    // The new image is the one linked and merged, and holds what ext build packs for the same set.
    expect(status()).toMatchObject({ generation: 3, merged: true, linkedMatchesGeneration: true });
    expect(ns.run(["/usr/bin/jq", "--version"], { hideNix: true }).status).toBe(0);
    expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout).toMatch(/Hello, world!/);
    ok(["build", "greet", "hello", "jq", "-o", "/var/lib/fresh.raw", "--quiet"]);
    expect(erofsTree(ns, fresh)).toBe(erofsTree(ns, "/var/lib/fresh.raw"));
    // A full pack now: damaged again, it is packed again to the same bytes, as its record says.
    flipMiddleByte(fresh);
    const again = repair();
    expect(again.r.stdout).toContain(`fixed: packed the image of generation 3 again from its store paths: ${fresh} (sha256 ${after.sha256.slice(0, 12)}… as its record says`);
    expect(sha256(fresh)).toBe(after.sha256);
    expect(sh(`fsck.erofs --extract ${fresh}`).status).toBe(0);
  });

  it("doctor names each damaged file and points at ext repair", () => {
    sh(`cp ${S}/generations/1.json /tmp/g1.keep && echo '{}' > ${S}/generations/1.json`);
    try {
      const r = ns.ext(["doctor"]);
      expect(r.stdout).toContain(`${S}/generations/1.json`);
      expect(r.stdout).toMatch(/fix: 'sudo ext repair' moves it aside/);
    } finally {
      sh(`cp /tmp/g1.keep ${S}/generations/1.json`);
    }
  });
});
