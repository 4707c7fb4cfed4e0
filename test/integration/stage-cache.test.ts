import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { extOk, openNamespace, shOk, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";
import { STAGING_VERSION } from "../../src/image/version.js";
import { erofsTree } from "../helpers/erofs-tree.js";

// Issue 7: `ext add` keeps what it staged (src/image/stage-cache.ts) and the next transaction moves
// it back instead of staging it again. The optimisation must not change a byte: every image made
// with the cache is compared with `ext build` of the same packages, which stages from scratch.
// Real CLI, real Nix on the fixtures, real mkfs.erofs and merges, in a private mount namespace.

const CACHE = `/var/lib/ext/staged/v${STAGING_VERSION}`;

let ns: Namespace;

beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
});
afterAll(() => ns?.close());

const ok = (args: string[]) => extOk(ns, args);
const sh = (script: string) => shOk(ns, script);

/** sha256 of the active image, and of the image `ext build` stages from scratch for `pkgs`; where the
 *  active image was appended to the previous one (mkfs.erofs ≥ 1.8, src/image/append.ts: same tree,
 *  bytes that depend on its history), their trees entry by entry instead. */
function activeAndFresh(pkgs: string[]): [string, string] {
  ok(["build", ...pkgs, "-o", "/var/lib/fresh.raw", "--quiet"]);
  const { generation } = JSON.parse(sh("cat /var/lib/ext/current.json")) as { generation: number };
  const record = JSON.parse(sh(`cat /var/lib/ext/generations/${generation}.json`)) as { image: { appended?: number } };
  if (record.image.appended !== undefined) return [erofsTree(ns, "/var/lib/extensions/ext.raw"), erofsTree(ns, "/var/lib/fresh.raw")];
  const [active, fresh] = sh("sha256sum /var/lib/extensions/ext.raw /var/lib/fresh.raw | cut -d' ' -f1").split("\n");
  return [active!, fresh!];
}

/** The cached store paths, by name without the hash (farm/ is the farm's trees). */
function cachedNames(): string[] {
  return sh(`ls ${CACHE} | grep -v '\\.json$' | grep -vx farm | sed 's/^[^-]*-//' | sort`).split("\n").filter(Boolean);
}

/** Inode of hello's binary in the cache (a file that was rewritten: its RUNPATH names the store). */
function helloInode(): string {
  return sh(`stat -c %i ${CACHE}/*-hello-2.10/bin/hello`);
}

describe("stage cache", () => {
  it("ext add keeps the staged store paths; the next add reuses them and makes the same bytes as a fresh stage", () => {
    ok(["add", "hello"]);
    expect(cachedNames()).toEqual(["glibc-2.36", "hello-2.10", "hello-2.10-man"]);
    const inode = helloInode();
    // The farm too: hello's link in usr/bin is kept and taken back, not made again.
    const link = sh(`stat -c %i ${CACHE}/farm/bin/hello`);

    ok(["add", "ripgrep", "jq"]);
    expect(cachedNames()).toEqual(expect.arrayContaining(["glibc-2.36", "hello-2.10", "jq-1.6", "ripgrep-13.0.0"]));
    // Moved back and forth, never staged again.
    expect(helloInode()).toBe(inode);
    expect(sh(`stat -c %i ${CACHE}/farm/bin/hello`)).toBe(link);
    expect(sh(`ls ${CACHE}/farm/bin`).split("\n")).toEqual(expect.arrayContaining(["hello", "jq", "rg"]));
    const [active, fresh] = activeAndFresh(["hello", "ripgrep", "jq"]);
    expect(active).toBe(fresh);
    expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout).toMatch(/Hello, world!/);
    expect(ns.run(["/usr/bin/jq", "--version"], { hideNix: true }).stdout).toMatch(/jq-1\.6/);
  });

  it("keeps only the last stage's store paths", () => {
    ok(["remove", "jq"]);
    ok(["add", "greet"]);
    const names = cachedNames();
    expect(names).not.toContain("jq-1.6");
    expect(names).toEqual(expect.arrayContaining(["hello-2.10", "ripgrep-13.0.0"]));
    expect(names.some((n) => n.startsWith("greet"))).toBe(true);
    const [active, fresh] = activeAndFresh(["hello", "ripgrep", "greet"]);
    expect(active).toBe(fresh);
  });

  it("a damaged cache costs time, never bytes: bad records, trees without records and records without trees are staged again", () => {
    sh([
      `cd ${CACHE}`,
      "echo '{not json' > \"$(ls | grep -- '-hello-2.10.json$')\"", // malformed record
      "rm \"$(ls | grep -- '-ripgrep-13.0.0.json$')\"", // tree without record
      "rm -r \"$(ls | grep -v '\\.json$' | grep -- '-glibc-2.36$')\"", // record without tree
      "mkdir stray && touch stray/file", // not ours at all
    ].join(" && "));
    const inode = helloInode();
    ok(["add", "jq"]);
    expect(helloInode()).not.toBe(inode); // staged again
    expect(sh(`ls ${CACHE}`)).not.toMatch(/stray/);
    const [active, fresh] = activeAndFresh(["hello", "ripgrep", "greet", "jq"]);
    expect(active).toBe(fresh);
  });

  it("a failure after staging leaves a working cache: the next add still makes the same bytes", () => {
    const r = ns.ext(["add", "cowsay-a"], { env: { EXT_TEST_FAIL_AT: "verify" } });
    expect(r.status).not.toBe(0);
    ok(["add", "cowsay-a"]);
    const [active, fresh] = activeAndFresh(["hello", "ripgrep", "greet", "jq", "cowsay-a"]);
    expect(active).toBe(fresh);
  });

  it("after a reboot nothing kept is used (kept files are not fsynced); the image is the same", () => {
    const inode = helloInode();
    const r = ns.ext(["remove", "greet"], { env: { EXT_BOOT_ID: "another-boot" } });
    expect(r.status, r.stderr).toBe(0);
    expect(helloInode()).not.toBe(inode); // staged again
    const [active, fresh] = activeAndFresh(["hello", "ripgrep", "jq", "cowsay-a"]);
    expect(active).toBe(fresh);
    ok(["add", "greet"]); // back to the set the next test starts from (its image is reused)
  });

  it("ext gc removes the cache; the next add stages from scratch", () => {
    const r = JSON.parse(ok(["gc", "--json"]).stdout) as { stageCacheCleared: boolean };
    expect(r.stageCacheCleared).toBe(true);
    expect(ns.run(["test", "-e", "/var/lib/ext/staged"]).status).not.toBe(0);
    ok(["remove", "jq"]);
    expect(cachedNames().length).toBeGreaterThan(0);
    const [active, fresh] = activeAndFresh(["hello", "ripgrep", "greet", "cowsay-a"]);
    expect(active).toBe(fresh);
  });
});

describe("stage cache on a nearly full /var", () => {
  let small: Namespace;
  beforeAll(() => {
    small = openNamespace();
    // A 200 MiB /var/lib: less free than the 1 GiB ext leaves to the rest of the system.
    const r = small.run(["sh", "-c", "mount -t tmpfs -o size=200m tmpfs /var/lib"]);
    if (r.status !== 0) throw new Error(r.stderr);
  });
  afterAll(() => small?.close());

  it("gives the staged trees' space back instead of keeping them; the image is the same", () => {
    const r = small.ext(["add", "hello"]);
    expect(r.status, r.stderr).toBe(0);
    expect(small.run(["sh", "-c", `ls -A ${CACHE} 2>/dev/null | wc -l`]).stdout.trim()).toBe("0");
    expect(small.run(["/usr/bin/hello"], { hideNix: true }).stdout).toMatch(/Hello, world!/);
    expect(small.ext(["build", "hello", "-o", "/var/lib/fresh.raw", "--quiet"]).status).toBe(0);
    const shas = small.run(["sh", "-c", "sha256sum /var/lib/extensions/ext.raw /var/lib/fresh.raw | cut -d' ' -f1"]).stdout.trim().split("\n");
    expect(shas[0]).toBe(shas[1]);
  });
});
