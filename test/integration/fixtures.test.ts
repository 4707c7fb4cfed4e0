// The fixture package set (test/fixtures) builds offline and gives real closures: ELF binaries whose
// interpreter and RUNPATH point into /nix/store and that run with the host's libraries hidden, a
// script with a store shebang, man pages, completions, conflicting files, a symlink farm, a second
// output and a package that fails. Other integration tests rely on these properties.
//
// Needs: nix (flakes on 2.8+), patchelf, unshare/mount and root (the hidden-library runs use a private
// mount namespace), the Debian packages in .ci/fixture-deps.txt installed, and the .debs in
// .ci/fixture-debs.txt (ripgrep, jq, hello, ...) extracted by scripts/fetch-fixture-debs.sh but NOT
// installed. Nothing is skipped: a missing tool fails the test.
import { describe, it, expect } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { outputInstallable, offlineNixEnv } from "../helpers/nix-env.js";
import { FARM_RULES } from "../../src/image/farm.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures");
const FLAKE = `path:${FIXTURES}`;
const ENV = { ...process.env, ...offlineNixEnv() };

const ARCH: Record<string, { system: string; triplet: string; loader: string }> = {
  x64: { system: "x86_64-linux", triplet: "x86_64-linux-gnu", loader: "ld-linux-x86-64.so.2" },
  arm64: { system: "aarch64-linux", triplet: "aarch64-linux-gnu", loader: "ld-linux-aarch64.so.1" },
};
const plat = ARCH[process.arch];

// Every fixture that must build; `broken` is the one that must not.
const GOOD = [
  "glibc", "libgcc", "pcre2", "oniguruma", "libjq", "ripgrep", "jq", "hello", "dash", "greet",
  "cowsay-a", "cowsay-b", "toolbox", "archives", "pycache", "python3", "zlib",
] as const;
// Compiled from source (minutes the first time): built and run by test/integration/real-programs.test.ts.
const COMPILED = ["cpython", "git"];
type Good = (typeof GOOD)[number];

function run(cmd: string, args: string[], opts: { input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, {
      env: ENV,
      encoding: "utf8",
      input: opts.input,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; status?: number };
    if (err.code === "ENOENT") throw new Error(`required tool not found on PATH: ${cmd}`);
    throw new Error(`${cmd} ${args.join(" ")} failed (status ${err.status}):\n${err.stderr ?? ""}`);
  }
}

/**
 * `nix build --json` for one or more attributes; returns the outputs map of each attribute's derivation.
 * Nix 2.8 does not keep argument order and merges attributes of one derivation (`hello`, `hello.man`)
 * into one entry, so results are matched by derivation name and merged per drv.
 */
function nixBuild(attrs: string[]): Record<string, string>[] {
  const out = run("nix", ["build", "--no-link", "--json", ...attrs.map((a) => `${FLAKE}#${a}`)]);
  const parsed = JSON.parse(out) as { drvPath: string; outputs: Record<string, string> }[];
  expect(Array.isArray(parsed)).toBe(true);
  return attrs.map((a) => {
    const base = a.split(/[.^]/)[0]!;
    const re = new RegExp(`^/nix/store/[a-z0-9]{32}-${base}-[0-9][^/]*\\.drv$`);
    const hits = parsed.filter((r) => re.test(r.drvPath));
    if (hits.length === 0) throw new Error(`nix build --json gave no result for ${a}: ${out}`);
    return Object.assign({}, ...hits.map((h) => h.outputs)) as Record<string, string>;
  });
}

/** Runtime closure of a store path: `path-info --json -r` is an array on Nix < 2.19, an object after. */
function closure(storePath: string): { path: string; references: string[] }[] {
  const parsed: unknown = JSON.parse(run("nix", ["path-info", "--json", "-r", storePath]));
  if (Array.isArray(parsed)) return parsed as { path: string; references: string[] }[];
  return Object.entries(parsed as Record<string, { references: string[] }>).map(([p, v]) => ({
    path: p,
    references: v.references,
  }));
}

function names(paths: string[]): string[] {
  return paths.map((p) => path.basename(p).slice(33)).sort();
}

/**
 * Run a command in a private mount namespace where the host's multiarch library directory (which on
 * Debian also holds the host's dynamic loader) is covered by an empty tmpfs, so only /nix/store
 * libraries can satisfy it. Fails if a host binary still runs there.
 */
function runWithHostLibsHidden(argv: string[], input?: string): string {
  const hostLibDir = fs.realpathSync(`/usr/lib/${plat!.triplet}`);
  const script = [
    'mount -t tmpfs -o mode=0755 tmpfs "$0" || exit 97',
    'if /usr/bin/true 2>/dev/null; then echo "host libraries are still usable" >&2; exit 98; fi',
    'exec "$@"',
  ].join("\n");
  return run("unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, hostLibDir, ...argv], {
    input,
  });
}

function isElf(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, 0);
    return b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether anything (a dangling symlink included) is at `p`. */
function lexists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}

/** The host paths an image of `outPath` would link (ext's FARM_RULES: bin → /usr/bin, share/man → …). */
function farmHostPaths(outPath: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, to: string, recursive: boolean) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory() && recursive) walk(path.join(dir, e.name), path.join(to, e.name), true);
      else if (!e.isDirectory()) found.push(path.join(to, e.name));
    }
  };
  for (const rule of FARM_RULES) {
    const dir = path.join(outPath, rule.from);
    if (fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) walk(dir, `/${rule.to}`, rule.recursive);
  }
  return found;
}

// Why the fixtures' ripgrep, jq and hello must not be installed on the host.
const NOT_INSTALLED =
  "ext refuses an image that would shadow a file of the host's /usr, so with this file on the host " +
  "the end-to-end tests' `ext add ripgrep|jq|hello` fail on the shadow check. The fixtures take these " +
  "programs from .debs extracted into /var/cache/ext-fixtures/root (bash scripts/fetch-fixture-debs.sh); " +
  "the Debian packages must not be installed: apt-get remove -y ripgrep jq hello";

// Tools and builds are checked inside each test (not in beforeAll) so that a missing tool fails every
// test instead of reporting them as skipped.
type Built = { out: Record<Good, string>; helloMan: string };
let builtOnce: { ok: Built } | { err: unknown } | undefined;
function fixtures(): Built {
  if (!builtOnce) {
    try {
      if (!plat) throw new Error(`unsupported architecture ${process.arch}`);
      for (const tool of ["nix", "patchelf", "unshare", "mount"]) {
        const r = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" });
        if (r.status !== 0) throw new Error(`required tool not found on PATH: ${tool}`);
      }
      // One nix call for all of them: the whole set builds in about a second.
      // `hello^man` where Nix has the syntax: from 2.26 on `hello.man` builds `out`.
      const built = nixBuild([...GOOD, outputInstallable("", "hello", "man").slice(1)]);
      const out = {} as Record<Good, string>;
      GOOD.forEach((name, i) => {
        out[name] = built[i]!.out!;
      });
      builtOnce = { ok: { out, helloMan: built[GOOD.length]!.man! } };
    } catch (err) {
      builtOnce = { err };
    }
  }
  if ("err" in builtOnce) throw builtOnce.err;
  return builtOnce.ok;
}

describe("test fixture package set (test/fixtures)", () => {
  // Getters so every test goes through fixtures() and fails on its own when something is missing.
  const out = new Proxy({} as Record<Good, string>, { get: (_t, k) => fixtures().out[k as Good] });
  const helloManOutput = () => fixtures().helloMan;

  it("the host has no /usr/bin/rg, /usr/bin/jq or /usr/bin/hello (their packages are not installed)", () => {
    for (const file of ["/usr/bin/rg", "/usr/bin/jq", "/usr/bin/hello"]) {
      expect(lexists(file), `${file} exists on the host. ${NOT_INSTALLED}`).toBe(false);
    }
  });

  it("the host has none of the files that ext would link into /usr for the fixtures the tests add", () => {
    // dash (bin/dash, bin/sh) and the libraries are only dependencies; the host's dash is Essential.
    const added: string[] = [
      out.ripgrep, out.jq, out.hello, helloManOutput(), out.greet, out["cowsay-a"], out["cowsay-b"], out.toolbox,
    ];
    const paths = added.flatMap(farmHostPaths);
    expect(paths).toContain("/usr/bin/rg");
    expect(paths).toContain("/usr/share/man/man1/hello.1.gz");
    const onHost = paths.filter(lexists);
    expect(onHost, `these exist on the host: ${onHost.join(", ")}. ${NOT_INSTALLED}`).toEqual([]);
  });

  it("builds every fixture into a store path named <pname>-<version>", () => {
    fixtures();
    for (const name of GOOD) {
      expect(out[name]).toMatch(new RegExp(`^/nix/store/[a-z0-9]{32}-${name}-[0-9][^/]*$`));
      expect(fs.statSync(out[name]).isDirectory()).toBe(true);
    }
  });

  it("gives every package pname, version and meta.{description,license,homepage}", () => {
    fixtures();
    const expr =
      "ps: builtins.mapAttrs (n: p: { inherit (p) pname version name; " +
      "meta = { inherit (p.meta) description license homepage; }; }) ps";
    const info = JSON.parse(
      run("nix", ["eval", "--json", `${FLAKE}#packages.${plat!.system}`, "--apply", expr]),
    ) as Record<string, { pname: string; version: string; name: string; meta: Record<string, string> }>;
    expect(Object.keys(info).sort()).toEqual([...GOOD, ...COMPILED, "broken", "unfree-tool"].sort());
    for (const [attr, p] of Object.entries(info)) {
      expect(p.pname).toBe(attr);
      expect(p.version).toMatch(/^[0-9]/);
      expect(p.name).toBe(`${p.pname}-${p.version}`);
      for (const k of ["description", "license", "homepage"]) expect(p.meta[k], `${attr}.meta.${k}`).toBeTruthy();
    }
  });

  it("ripgrep has a closure of several paths: pcre2, libgcc, glibc", () => {
    const c = closure(out.ripgrep);
    expect(c.length).toBeGreaterThan(1);
    expect(names(c.map((e) => e.path))).toEqual(
      ["glibc-2.36", "libgcc-12.2.0", "pcre2-10.42", "ripgrep-13.0.0"].sort(),
    );
    const self = c.find((e) => e.path === out.ripgrep)!;
    expect(self.references.sort()).toEqual([out.glibc, out.libgcc, out.pcre2].sort());
  });

  it("jq has a closure of several paths: libjq -> oniguruma -> glibc", () => {
    const c = closure(out.jq);
    expect(c.length).toBeGreaterThan(1);
    expect(names(c.map((e) => e.path))).toEqual(["glibc-2.36", "jq-1.6", "libjq-1.6", "oniguruma-6.9.8"]);
    expect(c.find((e) => e.path === out.libjq)!.references.sort()).toEqual([out.glibc, out.oniguruma].sort());
  });

  it("every copied ELF executable uses the glibc fixture's loader and a /nix/store RUNPATH", () => {
    const loader = `${out.glibc}/lib/${plat!.loader}`;
    for (const bin of [`${out.ripgrep}/bin/rg`, `${out.jq}/bin/jq`, `${out.hello}/bin/hello`, `${out.dash}/bin/dash`]) {
      expect(isElf(bin), bin).toBe(true);
      expect(run("patchelf", ["--print-interpreter", bin]).trim()).toBe(loader);
      const rpath = run("patchelf", ["--print-rpath", bin]).trim().split(":");
      expect(rpath.length).toBeGreaterThan(0);
      for (const dir of rpath) expect(dir).toMatch(/^\/nix\/store\/[a-z0-9]{32}-[^/]+\/lib$/);
    }
    // Libraries point at their store dependencies too (RUNPATH is not inherited from the executable).
    expect(run("patchelf", ["--print-rpath", `${out.libjq}/lib/libjq.so.1`]).trim()).toBe(
      `${out.oniguruma}/lib:${out.glibc}/lib`,
    );
    // Libraries keep the usual soname symlink next to the real file.
    expect(fs.lstatSync(`${out.pcre2}/lib/libpcre2-8.so.0`).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(`${out.pcre2}/lib/libpcre2-8.so.0`)).not.toContain("/");
  });

  it("runs rg, jq, hello and greet from /nix/store", () => {
    expect(run(`${out.ripgrep}/bin/rg`, ["--version"])).toMatch(/^ripgrep 13\./);
    expect(run(`${out.jq}/bin/jq`, ["--version"]).trim()).toBe("jq-1.6");
    expect(run(`${out.jq}/bin/jq`, ["-c", ".a | map(. * 2)"], { input: '{"a":[1,2]}' }).trim()).toBe("[2,4]");
    expect(run(`${out.hello}/bin/hello`, []).trim()).toBe("Hello, world!");
    const message = fs.readFileSync(`${out.greet}/share/greet/message.txt`, "utf8");
    expect(message).toBe("Hello from greet, a script fixture for ext.\nIt reads this file from its own store path.\n");
    expect(run(`${out.greet}/bin/greet`, [])).toBe(message);
  });

  it("runs them with the host's libraries and loader hidden", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ext-fixtures-"));
    try {
      fs.writeFileSync(path.join(dir, "haystack.txt"), "one\nneedle two\nthree\n");
      expect(runWithHostLibsHidden([`${out.ripgrep}/bin/rg`, "--version"])).toMatch(/^ripgrep 13\./);
      expect(runWithHostLibsHidden([`${out.ripgrep}/bin/rg`, "-n", "needle", dir]).trim()).toBe(
        `${path.join(dir, "haystack.txt")}:2:needle two`,
      );
      expect(runWithHostLibsHidden([`${out.jq}/bin/jq`, "-r", ".x"], '{"x":"y"}').trim()).toBe("y");
      expect(runWithHostLibsHidden([`${out.hello}/bin/hello`]).trim()).toBe("Hello, world!");
      expect(runWithHostLibsHidden([`${out.greet}/bin/greet`])).toContain("Hello from greet");
      expect(runWithHostLibsHidden([`${out["cowsay-a"]}/bin/moo`]).trim()).toBe("moo from cowsay-a");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("greet is a script with a store shebang that names its own data file", () => {
    const script = fs.readFileSync(`${out.greet}/bin/greet`, "utf8");
    expect(script.split("\n")[0]).toBe(`#!${out.dash}/bin/dash`);
    expect(script).toContain(`${out.greet}/share/greet/message.txt`);
    expect(names(closure(out.greet).map((e) => e.path))).toEqual(["dash-0.5.12", "glibc-2.36", "greet-1.0"]);
    expect(run(`${out.greet}/bin/greet`, ["--version"]).trim()).toBe("greet 1.0");
  });

  it("greet ships a gzip man page with /nix/store paths inside, completions, a .desktop file and an icon", () => {
    const gz = fs.readFileSync(`${out.greet}/share/man/man1/greet.1.gz`);
    expect(gz.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(true);
    // The store paths are only visible after decompression: a byte rewrite cannot reach them.
    expect(gz.includes("/nix/store")).toBe(false);
    const man = zlib.gunzipSync(gz).toString("utf8");
    expect(man).toContain(`${out.greet}/share/greet/message.txt`);
    expect(man).toContain(`${out.dash}/bin/dash`);

    for (const f of [
      "share/bash-completion/completions/greet",
      "share/zsh/site-functions/_greet",
      "share/fish/vendor_completions.d/greet.fish",
      "share/icons/hicolor/scalable/apps/greet.svg",
    ]) {
      expect(fs.statSync(`${out.greet}/${f}`).isFile(), f).toBe(true);
    }
    const desktop = fs.readFileSync(`${out.greet}/share/applications/greet.desktop`, "utf8");
    expect(desktop).toContain("[Desktop Entry]");
    expect(desktop).toContain(`Exec=${out.greet}/bin/greet`);
    expect(desktop).toContain("Icon=greet");
  });

  it("hello has a second output `man` holding its manual", () => {
    // Each output has its own store path (own hash), named <name>-<output>.
    const helloMan = helloManOutput();
    expect(helloMan).toMatch(/^\/nix\/store\/[a-z0-9]{32}-hello-2\.10-man$/);
    expect(helloMan).not.toBe(`${out.hello}-man`);
    const man = zlib.gunzipSync(fs.readFileSync(`${helloMan}/share/man/man1/hello.1.gz`)).toString("utf8");
    expect(man).toContain(".TH HELLO 1");
    expect(fs.existsSync(`${out.hello}/share/man`)).toBe(false);
    expect(closure(out.hello).map((e) => e.path)).not.toContain(helloMan);
  });

  it("cowsay-a and cowsay-b both provide bin/moo, with different contents", () => {
    const a = `${out["cowsay-a"]}/bin/moo`;
    const b = `${out["cowsay-b"]}/bin/moo`;
    expect(run(a, []).trim()).toBe("moo from cowsay-a");
    expect(run(b, []).trim()).toBe("moo from cowsay-b");
    expect(fs.readFileSync(a, "utf8").split("\n")[0]).toBe(`#!${out.dash}/bin/dash`);
  });

  it("toolbox is a symlink farm of absolute links into other store paths", () => {
    expect(fs.readlinkSync(`${out.toolbox}/bin/rg`)).toBe(`${out.ripgrep}/bin/rg`);
    expect(fs.readlinkSync(`${out.toolbox}/bin/hello`)).toBe(`${out.hello}/bin/hello`);
    expect(fs.readlinkSync(`${out.toolbox}/bin/hi`)).toBe("hello");
    const self = closure(out.toolbox).find((e) => e.path === out.toolbox)!;
    expect(self.references.sort()).toEqual([out.hello, out.ripgrep].sort());
    expect(run(`${out.toolbox}/bin/hi`, []).trim()).toBe("Hello, world!");
  });

  it("broken fails to build and shows its log", () => {
    fixtures();
    const r = spawnSync("nix", ["build", "--no-link", "--json", `${FLAKE}#broken`], { env: ENV, encoding: "utf8" });
    if (r.error) throw r.error;
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("broken.c:42: error: this fixture always fails to build");
    expect(r.stderr).toContain("broken: configuring");
  });
});
