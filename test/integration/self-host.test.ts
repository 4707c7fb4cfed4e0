import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, FIXTURES, REPO, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { OFFLINE_NIX_CONFIG } from "../helpers/nix-env.js";
// @ts-expect-error: a plain .mjs script (also run by hand), without type declarations
import { assemble } from "../fixtures-self/assemble.mjs";
import { ensureBuilt } from "../helpers/build.js";

// Issue 8, part 3: ext manages itself. The fixture source test/fixtures-self (assembled from the
// working tree: the bundle in dist/bundle/, and the host's node relinked into the store) has a
// package `ext`; `ext add ext` puts /usr/bin/ext into the image. It must then work on a host with no
// Node.js and no /nix: /nix is a read-only empty tmpfs in this namespace (so the private store is in
// use), and each run of /usr/bin/ext below hides the host's node (and /usr/lib's libraries).

const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const NIX_CONFIG = `${OFFLINE_NIX_CONFIG}\nbuild-users-group =`;

let ns: Namespace;
let work: string;
let source: string;

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-self-"));
  source = assemble(join(work, "flake")) as string;
  ns = openNamespace();
  expect(ns.run(["mount", "-t", "tmpfs", "-o", "ro,mode=0755", "tmpfs", "/nix"]).status).toBe(0);
  expect(ns.run(["test", "-e", "/nix/store"]).status).not.toBe(0);
});
afterAll(() => {
  ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const env = () => ({ NIX_CONFIG, EXT_SOURCE: source });

function ok(args: string[]): RunOutput {
  const r = ns.ext(args, { env: env() });
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/**
 * Runs argv in a child namespace where the host's node is gone (/dev/null over /usr/bin/node, which
 * /bin/node is too) and PATH is /usr/bin:/bin; with `hideLibs`, the host's libraries as well (an
 * empty tmpfs over /usr/lib/<triplet>: the loader and libstdc++ must come from the image).
 */
function withoutNode(argv: string[], opts: { hideLibs?: boolean; merges?: boolean } = {}): RunOutput {
  const hide = [
    // For a run that merges (systemd-sysext refresh): its mounts must reach this child namespace,
    // as in the namespace helper (shared), without leaking the hiding mounts back out (slave).
    ...(opts.merges ? ["mount --make-rshared /"] : []),
    "mount --bind /dev/null /usr/bin/node",
    ...(opts.hideLibs ? ["mount -t tmpfs -o ro tmpfs /usr/lib/x86_64-linux-gnu"] : []),
  ].join(" && ");
  const propagation = opts.merges ? ["--propagation", "slave"] : [];
  return ns.run(["unshare", "-m", ...propagation, "sh", "-c", `${hide} && exec "$@"`, "sh", ...argv], {
    env: { PATH: "/usr/bin:/bin", NIX_CONFIG, NO_COLOR: "1", HOME: "/root" },
  });
}

describe("ext add ext: ext from the image, with no node and no /nix on the host", () => {
  it("ext add ext (from the fixture source, into the private store) puts /usr/bin/ext into the image", () => {
    const r = ok(["add", "ext"]);
    expect(r.stdout).toMatch(new RegExp(`generation 1 is active \\(\\+ext ${VERSION.replace(/\./g, "\\.")}\\)`));
    const link = ns.run(["readlink", "/usr/bin/ext"]).stdout.trim();
    expect(link).toMatch(/^\/usr\/store\/[0-9a-z]{32}-ext-/);
    // A store shebang (dash) and a store node, both relocated to /usr/store.
    const script = ns.run(["cat", "/usr/bin/ext"]).stdout;
    expect(script).toMatch(/^#!\/usr\/store\/[0-9a-z]{32}-dash-[^/]+\/bin\/dash\n/);
    expect(script).toMatch(/exec \/usr\/store\/[0-9a-z]{32}-nodejs-[^/]+\/bin\/node \/usr\/store\/[0-9a-z]{32}-ext-[^/]+\/lib\/ext\/bin\/ext\.js "\$@"/);
    expect(ok(["status", "--json"]).stdout).toMatch(/"kind": "private"/);
  });

  it("man ext shows ext's man page from the image (the farm links share/man/man1/ext.1 into /usr/share/man)", () => {
    const link = ns.run(["readlink", "/usr/share/man/man1/ext.1"]).stdout.trim();
    expect(link).toMatch(/^\/usr\/store\/[0-9a-z]{32}-ext-[^/]+\/share\/man\/man1\/ext\.1$/);
    expect(ns.run(["test", "-e", "/nix/store"]).status).not.toBe(0);
    const r = ns.run(["man", "ext"], { env: { PATH: "/usr/bin:/bin", MANWIDTH: "100", LC_ALL: "C.UTF-8", HOME: "/root" } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^EXT\(1\) +User Commands +EXT\(1\)$/m);
    expect(r.stdout).toMatch(/^ {3}ext add PACKAGES\.\.\.$/m);
    expect(r.stdout).toMatch(new RegExp(`^ext ${VERSION.replace(/\./g, "\\.")} `, "m"));
    // The page names /nix/store in its text; relocation must not have turned it into /usr/store.
    expect(r.stdout.replace(/\s+/g, " ")).toContain("closure from /nix/store to /usr/store");
  });

  it("/usr/bin/ext --version runs with no node on PATH and the host's libraries hidden", () => {
    expect(withoutNode(["sh", "-c", "command -v node || echo none"]).stdout.trim()).toBe("none");
    const r = withoutNode(["/usr/bin/ext", "--version"], { hideLibs: true });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it("/usr/bin/ext list and status work there", () => {
    const list = withoutNode(["/usr/bin/ext", "list"], { hideLibs: true });
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^ext +${VERSION.replace(/\./g, "\\.")} +`, "m"));
    const json = JSON.parse(withoutNode(["/usr/bin/ext", "list", "--json"]).stdout) as { name: string; outPaths: Record<string, string> }[];
    // Store paths are still /nix/store/… to the relocated ext: its own /nix/store literals were not rewritten.
    expect(json.find((p) => p.name === "ext")?.outPaths["out"]).toMatch(/^\/nix\/store\/[0-9a-z]{32}-ext-/);
    const st = withoutNode(["/usr/bin/ext", "status"]);
    expect(st.status).toBe(0);
    expect(st.stdout).toMatch(/^merged: +yes/m);
    expect(st.stdout).toMatch(/^nix store: +private store \/var\/lib\/ext\/nix\/nix\/store/m);
  });

  it("the ext from the image manages the system: adds packages, and itself survives the new image", () => {
    // One child namespace for the add and the checks after it: the new merge happened there.
    const script = [
      "command -v node && exit 90",
      `/usr/bin/ext add greet ripgrep --source ${FIXTURES} || exit $?`,
      "/usr/bin/greet | head -n 1",
      "/usr/bin/rg --version | head -n 1",
      "/usr/bin/ext --version",
      "/usr/bin/ext list",
    ].join("\n");
    const r = withoutNode(["sh", "-c", script], { merges: true });
    if (r.status !== 0) throw new Error(`/usr/bin/ext add failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
    const out = r.stdout.split("\n");
    expect(out).toEqual(expect.arrayContaining([
      expect.stringMatching(/generation 2 is active/),
      "Hello from greet, a script fixture for ext.",
      expect.stringMatching(/^ripgrep 13/),
      VERSION,
      expect.stringMatching(new RegExp(`^ext +${VERSION.replace(/\./g, "\\.")} +`)),
      expect.stringMatching(/^greet +1\.0 +/),
      expect.stringMatching(/^ripgrep +13\.0\.0 +/),
    ]));
    // The record says ext is kept in generation 2, with the store paths it had.
    const gen = JSON.parse(ns.read("/var/lib/ext/generations/2.json") ?? "{}") as { packages: { name: string }[] };
    expect(gen.packages.map((p) => p.name).sort()).toEqual(["ext", "greet", "ripgrep"]);
  });
});
