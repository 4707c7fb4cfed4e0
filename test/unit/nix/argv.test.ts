import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { MissingToolError } from "../../../src/errors.js";
import { closure } from "../../../src/nix/closure.js";
import { lockSource } from "../../../src/nix/lock.js";
import { search } from "../../../src/nix/search.js";
import { realise } from "../../../src/nix/build.js";
import type { NixContext } from "../../../src/nix/types.js";

// A stand-in `nix` on PATH that records its argv and answers from files, so the exact command lines
// (flags per Nix version, --store, `--` before a search pattern) are checked without a real Nix.

const recorded = (file: string): string =>
  readFileSync(fileURLToPath(new URL(`../../recorded/nix/${file}`, import.meta.url)), "utf8");

const FAKE_NIX = `#!/bin/sh
call=$(mktemp "$FAKE_NIX_DIR/call.XXXXXX")
printf '%s\\0' "$@" > "$call"
sub=""
for a in "$@"; do
  case "$a" in
    --version|eval|build|path-info|flake|search|log) sub="$a"; break ;;
  esac
done
[ -f "$FAKE_NIX_DIR/$sub.err" ] && cat "$FAKE_NIX_DIR/$sub.err" >&2
[ -f "$FAKE_NIX_DIR/$sub.out" ] && cat "$FAKE_NIX_DIR/$sub.out"
if [ -f "$FAKE_NIX_DIR/$sub.rc" ]; then exit "$(cat "$FAKE_NIX_DIR/$sub.rc")"; fi
exit 0
`;

let dir: string;
let ctx: NixContext;

function answer(sub: string, out: string, rc = 0, err = ""): void {
  writeFileSync(path.join(dir, `${sub}.out`), out);
  writeFileSync(path.join(dir, `${sub}.rc`), String(rc));
  writeFileSync(path.join(dir, `${sub}.err`), err);
}

function calls(): string[][] {
  return readdirSync(dir).filter((f) => f.startsWith("call.")).map((f) => readFileSync(path.join(dir, f), "utf8").split("\0").slice(0, -1));
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "ext-fake-nix-"));
  writeFileSync(path.join(dir, "nix"), FAKE_NIX);
  chmodSync(path.join(dir, "nix"), 0o755);
  ctx = { store: { root: "/" }, system: "x86_64-linux", env: { PATH: `${dir}:${process.env.PATH ?? ""}`, FAKE_NIX_DIR: dir } };
  answer("--version", "nix (Nix) 2.8.0\n");
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = "/nix/store/sxjcjr943fb6rxzk12ang0zdkwgjrwjf-recgood-2.3";
const DEP = "/nix/store/2s8d6if8n19y48an6gyfcgyfvghiz04f-recdep-1.0";

describe("closure", () => {
  it("Nix 2.8: plain --json, array output", async () => {
    answer("path-info", recorded("nix-2.8.0/path-info.json"));
    const entries = await closure(ctx, [GOOD, GOOD]);
    expect(entries.map((e) => e.path)).toContain(DEP);
    const pathInfo = calls().find((c) => c.includes("path-info"));
    expect(pathInfo).toEqual(["--extra-experimental-features", "nix-command flakes", "path-info", "--json", "--recursive", GOOD]);
  });

  it("Nix ≥ 2.33: asks for --json-format 2 and reads its shape (recorded on 2.34.8); chroot store named", async () => {
    answer("--version", "nix (Nix) 2.34.8\n");
    answer("path-info", recorded("nix-2.34.8/path-info-format2.json"));
    // Not below /tmp, which is world-writable: ext (like Nix 2.34) refuses a store there.
    const chroot = mkdtempSync(path.join(homedir(), ".ext-argv-"));
    onTestFinished(() => rmSync(chroot, { recursive: true, force: true }));
    ctx = { ...ctx, store: { root: chroot } };
    const entries = await closure(ctx, [GOOD]);
    expect(entries.find((e) => e.path === GOOD)?.references).toEqual([DEP]);
    expect(calls().find((c) => c.includes("path-info"))).toEqual([
      "--extra-experimental-features", "nix-command flakes", "--store", `${chroot}?real=${chroot}/nix/store`,
      "path-info", "--json", "--json-format", "2", "--recursive", GOOD,
    ]);
    // `nix --version` is asked once per context.
    await closure(ctx, [GOOD]);
    expect(calls().filter((c) => c.includes("--version"))).toHaveLength(1);
  });

  it("a path that is not in the store is an error, not an empty closure (Nix 2.8 exits 0)", async () => {
    answer("path-info", recorded("nix-2.8.0/path-info-invalid.json"));
    await expect(closure(ctx, ["/nix/store/00000000000000000000000000000000-missing"])).rejects.toThrow(/not in the Nix store/);
  });

  it("refuses non-store paths before calling nix", async () => {
    await expect(closure(ctx, ["--all"])).rejects.toThrow(/invalid store path/);
    expect(calls().filter((c) => c.includes("path-info"))).toHaveLength(0);
  });
});

describe("search and lockSource argv", () => {
  it("search puts the escaped query after --", async () => {
    answer("search", recorded("nix-2.8.0/search.json"));
    const results = await search(ctx, "/srv/flake/", "-rf.*");
    expect(results[0]?.attr).toBeDefined();
    expect(calls().find((c) => c.includes("search"))).toEqual([
      "--extra-experimental-features", "nix-command flakes", "search", "--json", "path:/srv/flake", "--", "-rf\\.\\*",
    ]);
  });

  it("lockSource reads flake metadata", async () => {
    answer("flake", recorded("nix-2.8.0/flake-metadata-git.json"));
    const locked = await lockSource(ctx, "git+file:///tmp/ext-rec/flake");
    expect(locked.rev).toBe("345f8d9e96244c3efdae338a59089e52ac72e8c9");
    expect(calls().find((c) => c.includes("flake"))).toEqual([
      "--extra-experimental-features", "nix-command flakes", "flake", "metadata", "--json", "git+file:///tmp/ext-rec/flake",
    ]);
  });

  it("a source Nix cannot find becomes a source error", async () => {
    answer("flake", "", 1, recorded("nix-2.8.0/stderr-source-missing.txt").replace(/\/tmp\/ext-rec\/nonexistent/g, "/srv/none"));
    await expect(lockSource(ctx, "/srv/none")).rejects.toMatchObject({ code: "nix-source" });
  });
});

describe("realise argv", () => {
  it("evaluates with a constant --apply, then builds every output in one call", async () => {
    answer("eval", JSON.stringify({
      description: "a package that works", drvPath: "/nix/store/0vx7nswhz9pbbnfwafpxx7yk3gapdl07-recgood-2.3.drv", homepage: null,
      isDerivation: true, isSet: false, licenses: ["MIT"], name: "recgood-2.3", outputName: "out", outputs: ["out"],
      outputsToInstall: null, pname: null, version: null,
    }));
    answer("build", JSON.stringify([{ drvPath: "/nix/store/0vx7nswhz9pbbnfwafpxx7yk3gapdl07-recgood-2.3.drv", outputs: { out: GOOD } }]));
    const [pkg] = await realise(ctx, [{ name: "good", attr: "recgood", source: "/srv/flake" }]);
    expect(pkg).toEqual({
      name: "good", attr: "recgood", source: "path:/srv/flake", pname: "recgood", version: "2.3", description: "a package that works",
      license: "MIT", outPaths: { out: GOOD }, drvPath: "/nix/store/0vx7nswhz9pbbnfwafpxx7yk3gapdl07-recgood-2.3.drv",
    });
    const evalCall = calls().find((c) => c.includes("eval"));
    expect(evalCall?.slice(0, 5)).toEqual(["--extra-experimental-features", "nix-command flakes", "eval", "--json", "path:/srv/flake#recgood"]);
    expect(evalCall?.[5]).toBe("--apply");
    expect(evalCall?.[6]?.startsWith("drv:")).toBe(true);
    expect(calls().find((c) => c.includes("build"))).toEqual([
      "--extra-experimental-features", "nix-command flakes", "build", "--no-link", "--json", "--print-build-logs", "path:/srv/flake#recgood.out",
    ]);
  });

  it.each(["nix-2.26.3", "nix-2.34.8"])("%s: outputs are selected with ^ (there `#recmulti.man` builds out), read from the recorded answer", async (v) => {
    answer("--version", recorded(`${v}/version.txt`));
    answer("eval", JSON.stringify({
      description: null, drvPath: "/nix/store/pjfwdzqdq1yy78ah7g7vsf6wcbj6ik5m-recmulti-0.1.drv", homepage: null,
      isDerivation: true, isSet: false, licenses: [], name: "recmulti-0.1", outputName: "out", outputs: ["out", "man"],
      outputsToInstall: null, pname: null, version: null,
    }));
    answer("build", recorded(`${v}/build-caret.json`));
    const [pkg] = await realise(ctx, [{ name: "multi", attr: "recmulti", source: "/srv/flake", outputs: ["man"] }]);
    expect(pkg?.outPaths).toEqual({ man: "/nix/store/a2b8mnqwsadcr1himhz19q160jk7qri4-recmulti-0.1-man" });
    expect(calls().find((c) => c.includes("build"))?.at(-1)).toBe("path:/srv/flake#recmulti^man");
    // What `.man` gives on these versions: out only, so ext would find no path for `man`.
    answer("build", recorded(`${v}/build.json`));
    await expect(realise(ctx, [{ name: "multi", attr: "recmulti", source: "/srv/flake", outputs: ["man"] }])).rejects.toThrow(/no path for output 'man'/);
  });

  it("validates every request before any nix call", async () => {
    await expect(realise(ctx, [{ name: "ok", attr: "ok", source: "nixpkgs" }, { name: "bad", attr: "jq; rm -rf /", source: "nixpkgs" }]))
      .rejects.toMatchObject({ code: "invalid-name" });
    expect(calls()).toHaveLength(0);
  });

  it("a missing nix binary is a MissingToolError", async () => {
    ctx = { ...ctx, env: { PATH: "/nonexistent" } };
    await expect(closure(ctx, [GOOD])).rejects.toBeInstanceOf(MissingToolError);
  });
});
