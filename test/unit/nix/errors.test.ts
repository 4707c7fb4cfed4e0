import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BuildFailedError, ExitCode, ToolFailedError, UnknownPackageError } from "../../../src/errors.js";
import {
  NixSourceError, buildFailed, buildLogFromStderr, classifyNixStderr, errorBlock, evalFailed, localDirectory, nixFailed, nixSuggestions,
  sourceError, unknownPackage,
} from "../../../src/nix/errors.js";

const recorded = (file: string): string =>
  readFileSync(fileURLToPath(new URL(`../../recorded/nix/${file}`, import.meta.url)), "utf8");

const BROKEN = "/nix/store/6876a0izv70w773qpxahx4mcqjzw38ca-recbroken-1.drv";
/** Every Nix whose output is recorded (test/recorded/nix/record.sh on Debian 12, trixie and sid). */
const VERSIONS = ["nix-2.8.0", "nix-2.26.3", "nix-2.34.8"];

describe("classifyNixStderr on recorded stderr", () => {
  it.each(VERSIONS)("unknown attribute (%s), with Nix's own suggestion", (v) => {
    expect(classifyNixStderr(recorded(`${v}/stderr-unknown-attribute.txt`))).toEqual({
      kind: "unknown-attribute",
      flake: "path:/tmp/ext-rec/flake",
      attr: "recgods",
      tried: ["packages.x86_64-linux.recgods", "legacyPackages.x86_64-linux.recgods", "recgods"],
      suggestions: ["recgood"],
    });
  });

  it.each([
    ...VERSIONS.flatMap((v) => [[`${v}/stderr-build-failed.txt`, 1], [`${v}/stderr-build-failed-L.txt`, 1], [`${v}/stderr-dependency-failed.txt`, 1]] as [string, number][]),
  ])("build failure in %s names the derivation whose builder failed and quotes its log", (file, code) => {
    expect(classifyNixStderr(recorded(file))).toEqual({
      kind: "build-failed",
      drv: BROKEN,
      exitCode: code,
      log: ["compiling", "error: something went wrong"],
    });
  });

  it.each([
    ...VERSIONS.map((v) => [`${v}/stderr-source-missing.txt`, { kind: "source-missing", path: "/tmp/ext-rec/nonexistent" }] as const),
    ...VERSIONS.map((v) => [`${v}/stderr-not-a-flake.txt`, { kind: "not-a-flake", path: "/tmp/ext-rec/empty" }] as const),
    ...VERSIONS.map((v) => [`${v}/stderr-not-a-flake-path.txt`, { kind: "not-a-flake" }] as const),
    ["nix-2.8.0/stderr-registry.txt", { kind: "registry" }],
    ["nix-2.26.3/stderr-registry.txt", { kind: "registry", ref: "nixpkgs" }],
    ["nix-2.34.8/stderr-registry.txt", { kind: "registry", ref: "nixpkgs" }],
    ["nix-2.34.8/stderr-store-world-writable.txt", { kind: "store-permissions", path: "/tmp/ext-rec/open" }],
  ])("%s", (file, expected) => {
    expect(classifyNixStderr(recorded(file))).toEqual(expected);
  });

  it.each(VERSIONS)("an evaluation error keeps Nix's message (%s)", (v) => {
    const failure = classifyNixStderr(recorded(`${v}/stderr-eval-refused.txt`));
    expect(failure.kind).toBe("eval");
    // The root cause alone: 2.26 and 2.34 put "… while calling the 'throw' builtin" frames before it.
    expect(failure.kind === "eval" && failure.message).toMatch(/^error: Package ‘refused-1.0’.*refusing to evaluate\.$/);
    expect(failure.kind === "eval" && failure.message).not.toMatch(/while calling|\n/);
  });
});

describe("build failures as a user sees them", () => {
  it("the log has no control bytes or escape sequences; the hint names a private store", () => {
    const err = buildFailed({
      packages: ["broken"], drv: BROKEN, rootOfPackage: true, exitCode: 1, storeRoot: "/var/lib/ext/nix",
      log: ["\x1b[31;1merror:\x1b[0m it broke\r", "\x1b]0;title\x07bell\x07 and \x08back", "tab\tkept"],
    });
    expect(err.details).toBe(`last 3 log lines of recbroken-1:\n  > error: it broke\n  > bell and back\n  > tab\tkept`);
    expect(err.hint).toBe(`see the full build log with 'nix log --store /var/lib/ext/nix ${BROKEN}'`);
    expect(buildFailed({ packages: ["broken"], drv: BROKEN, rootOfPackage: true, log: [], storeRoot: "/" }).hint).toBe(`see the full build log with 'nix log ${BROKEN}'`);
  });
});

describe("classifyNixStderr on other wording", () => {
  it("a locked source that changed (Nix ≥ 2.26, as the manifest tests met it in the trixie tree)", () => {
    const text = "error: NAR hash mismatch in input 'path:/tmp/m/fixtures?lastModified=1&narHash=sha256-nsAz', expected 'sha256-nsAz' but got 'sha256-3IqY'\n";
    const failure = classifyNixStderr(text);
    expect(failure).toEqual({ kind: "source-changed", ref: "path:/tmp/m/fixtures?lastModified=1&narHash=sha256-nsAz" });
    expect(sourceError(failure, "path:/tmp/m/fixtures")?.hint).toMatch(/'ext upgrade' locks the source as it is now/);
  });

  it("a fixed-output hash mismatch is a build failure", () => {
    const text = `error: hash mismatch in fixed-output derivation '${BROKEN}':\n         specified: sha256-AAAA\n            got:    sha256-BBBB\n`;
    expect(classifyNixStderr(text)).toMatchObject({ kind: "build-failed", drv: BROKEN });
  });

  it("network errors count only when they are errors, not offline warnings", () => {
    const warnOnly = "warning: error: unable to download 'https://cache.nixos.org/nix-cache-info': Couldn't resolve host name (6)\nerror: assertion 'false' failed\n";
    expect(classifyNixStderr(warnOnly)).toEqual({ kind: "eval", message: "error: assertion 'false' failed" });
    const real = "error: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/commits/HEAD': Couldn't resolve host name (6)\n";
    expect(classifyNixStderr(real)).toEqual({ kind: "network", url: "https://api.github.com/repos/NixOS/nixpkgs/commits/HEAD" });
  });

  it("a malformed reference", () => {
    expect(classifyNixStderr("error: 'path:/x#y^z' is not a valid URL\n")).toEqual({ kind: "bad-reference", ref: "path:/x#y^z" });
  });

  it("strips terminal colours before matching", () => {
    const text = "\x1b[31;1merror:\x1b[0m flake '\x1b[35;1mpath:/x\x1b[0m' does not provide attribute 'packages.x86_64-linux.a', 'legacyPackages.x86_64-linux.a' or 'a'\n";
    expect(classifyNixStderr(text)).toMatchObject({ kind: "unknown-attribute", flake: "path:/x", attr: "a" });
  });

  it("anything else is kept verbatim", () => {
    expect(classifyNixStderr("something odd\n")).toEqual({ kind: "other", message: "something odd" });
  });
});

describe("helpers", () => {
  it("nixSuggestions reads one or several guesses", () => {
    expect(nixSuggestions("error: x\n       Did you mean recgood?\n")).toEqual(["recgood"]);
    expect(nixSuggestions("       Did you mean one of ripgrep, ripgrep-all or ripsecrets?\n")).toEqual(["ripgrep", "ripgrep-all", "ripsecrets"]);
    expect(nixSuggestions("nothing here")).toEqual([]);
  });

  it("errorBlock drops the --show-trace advice", () => {
    expect(errorBlock(recorded("nix-2.8.0/stderr-source-missing.txt"))).toBe("error: getting status of '/tmp/ext-rec/nonexistent': No such file or directory");
  });

  it("buildLogFromStderr prefers the -L stream, else the quoted excerpt", () => {
    expect(buildLogFromStderr("recbroken> a\nother> b\nrecbroken> c\n", BROKEN)).toEqual(["a", "c"]);
    expect(buildLogFromStderr("nothing", BROKEN)).toEqual([]);
  });

  it("localDirectory finds the directory of local references only", () => {
    expect(localDirectory("path:/a/b?narHash=x")).toBe("/a/b");
    expect(localDirectory("git+file:///a/b")).toBe("/a/b");
    expect(localDirectory("github:o/r")).toBeUndefined();
    expect(localDirectory("nixpkgs")).toBeUndefined();
  });
});

describe("typed errors", () => {
  it("unknown package carries close matches", () => {
    const e = unknownPackage("ripgrp", "nixpkgs", ["ripgrep"]);
    expect(e).toBeInstanceOf(UnknownPackageError);
    expect(e.message).toBe("unknown package 'ripgrp' in nixpkgs");
    expect(e.hint).toBe("did you mean 'ripgrep'?");
  });

  it("a build failure names the package and shows the log tail", () => {
    const e = buildFailed({ packages: ["broken"], drv: BROKEN, rootOfPackage: true, log: ["compiling", "oops"], exitCode: 1 });
    expect(e).toBeInstanceOf(BuildFailedError);
    expect(e.message).toBe("package 'broken' failed to build (builder exit code 1)");
    expect(e.details).toBe("last 2 log lines of recbroken-1:\n  > compiling\n  > oops");
    expect(e.hint).toContain(`nix log ${BROKEN}`);
    expect(e.exitCode).toBe(ExitCode.nix);
  });

  it("a failed dependency is named as such", () => {
    const e = buildFailed({ packages: ["needs", "other"], drv: BROKEN, rootOfPackage: false, log: [] });
    expect(e.message).toBe("packages 'needs', 'other' failed to build: its dependency 'recbroken-1' failed");
    expect(e.details).toBeUndefined();
  });

  it("source errors", () => {
    const missing = sourceError({ kind: "source-missing", path: "/srv/flake" }, "path:/srv/flake");
    expect(missing).toBeInstanceOf(NixSourceError);
    expect(missing?.message).toContain("does not exist");
    expect(missing?.exitCode).toBe(ExitCode.nix);
    // A package reading some other missing file is not the source's fault.
    expect(sourceError({ kind: "source-missing", path: "/etc/secret" }, "path:/srv/flake")).toBeUndefined();
    expect(sourceError({ kind: "not-a-flake" }, "path:/srv")?.hint).toContain("flake.nix");
    expect(sourceError({ kind: "registry", ref: "nixpkgs" }, "nixpkgs")?.message).toContain("flake registry");
    expect(sourceError({ kind: "network" }, "github:o/r")?.message).toContain("cannot fetch");
    expect(sourceError({ kind: "eval", message: "x" }, "nixpkgs")).toBeUndefined();
  });

  it("evaluation refusals get a nixpkgs hint", () => {
    const e = evalFailed("refused", "nixpkgs", "error: Package ‘refused-1.0’ has an unfree license (‘unfree’), refusing to evaluate.");
    expect(e).toBeInstanceOf(BuildFailedError);
    expect(e.hint).toContain("unfree");
  });

  it("anything else shows what nix said and the command", () => {
    const e = nixFailed("doing x", "nix foo", "noise\nerror: bad thing\n");
    expect(e).toBeInstanceOf(ToolFailedError);
    expect(e.details).toBe("error: bad thing");
    expect(e.hint).toContain("nix foo");
  });
});
