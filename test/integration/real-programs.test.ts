import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNamespace, buildFixture as build, relocated, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 15: programs built the way nixpkgs builds them. CPython and git are compiled from Debian 12's
// sources with --prefix in the store (test/fixtures/compiled.nix), so every path compiled into them —
// CPython's prefix, git's exec path, template directory and shell — is a /nix/store path that ext's
// rewrite must turn into /usr/store. They run their own tests from /usr/bin, with /nix and the host's
// own CPython and git hidden, and the results are compared with the same run from /nix/store.
//
// The first run on a fresh machine compiles both (minutes: test/fixtures/README.md has the times);
// afterwards they come from the Nix store, or from /var/cache/ext-fixtures/built.

const COMPILE_MS = 3_600_000;

// CPython's regression tests, run by its own regrtest (`python3 -m test`): modules that exercise where
// the interpreter finds itself and its library (site, sysconfig, getpath, venv, the command line,
// importlib, compileall, zipimport), and ones that read and write files from the standard library
// (os, shutil, tempfile, tarfile, zipfile, json).
const MODULES = [
  "test_site", "test_sysconfig", "test_getpath", "test_venv", "test_cmd_line", "test_cmd_line_script",
  "test_importlib", "test_compileall", "test_py_compile", "test_zipimport", "test_runpy", "test_os",
  "test_posixpath", "test_shutil", "test_tempfile", "test_tarfile", "test_zipfile", "test_json",
];

// What those modules give on Debian 12 (2 cores, as root), identical test by test from /nix/store and
// from /usr/store; test ids are regrtest's. No failures; 16 errors, the same in both runs, because the
// store is read-only and its mtimes are 1 (test/fixtures/README.md says more):
//  - test_runpy and test_importlib's threaded imports `forget()` a module by unlinking its .pyc in
//    every sys.path directory, the standard library's included: EROFS, where a writable tree gives
//    ENOENT, which the helper ignores;
//  - test_zipfile's ZipInfo.from_file of a file (and a directory) of the standard library: "ZIP does
//    not support timestamps before 1980" (mtime 1).
const EXPECTED = {
  total: 3530,
  failed: [] as string[],
  errors: [
    "test.test_importlib.test_threaded_import.ThreadedImportTests.test_circular_imports",
    "test.test_importlib.test_threaded_import.ThreadedImportTests.test_side_effect_import",
    "test.test_runpy.RunModuleTestCase.test_run_module",
    "test.test_runpy.RunModuleTestCase.test_run_module_alter_sys",
    "test.test_runpy.RunModuleTestCase.test_run_module_in_namespace_package",
    "test.test_runpy.RunModuleTestCase.test_run_name",
    "test.test_runpy.RunModuleTestCase.test_run_namespace_package",
    "test.test_runpy.RunModuleTestCase.test_run_namespace_package_in_namespace_package",
    "test.test_runpy.RunModuleTestCase.test_run_package",
    "test.test_runpy.RunModuleTestCase.test_run_package_alter_sys",
    "test.test_runpy.RunModuleTestCase.test_run_package_in_namespace_package",
    "test.test_zipfile.ZipInfoTests.test_from_dir",
    "test.test_zipfile.ZipInfoTests.test_from_file",
    "test.test_zipfile.ZipInfoTests.test_from_file_bytes",
    "test.test_zipfile.ZipInfoTests.test_from_file_fileno",
    "test.test_zipfile.ZipInfoTests.test_from_file_pathlike",
  ],
  skipped: 369,
};

type Outcome = "passed" | "failed" | "error" | "skipped";

let ns: Namespace;
let work: string;
let cpython: string;
let git: string;

/** The host's own copies, hidden under an empty tmpfs where the namespace has them: CPython's and
 *  git's libraries, templates and helpers. /usr/bin/python3* and /usr/bin/git are the image's. */
const HOST_COPIES = ["/usr/lib/python3.11", "/usr/lib/python3", "/usr/local/lib/python3.11", "/usr/lib/git-core", "/usr/share/git-core"];

/** A shell line in a mount namespace of its own inside `ns`, with the host's copies hidden and, for
 *  `hideNix`, /nix too. Otherwise /nix/store is made read-only, as NixOS mounts it and as /usr/store
 *  is: root may write into Debian's /nix/store, and tests that clean up byte-code beside a module
 *  (test_runpy's `forget`) or write it (test_zipfile's PyZipFile) then behave differently — and change
 *  the store path. */
function hidden(line: string, opts: { hideNix: boolean }): RunOutput {
  const hide = [
    opts.hideNix ? "mount -t tmpfs tmpfs /nix" : "mount --bind /nix/store /nix/store && mount -o remount,bind,ro /nix/store",
    ...HOST_COPIES.map((d) => `{ [ ! -d ${d} ] || mount -t tmpfs tmpfs ${d}; }`),
  ].join(" && ");
  return ns.run(["unshare", "-m", "sh", "-c", `${hide} && ${line}`], {
    env: { PATH: "/usr/bin:/bin", HOME: join(work, "home"), LC_ALL: "C.UTF-8", TMPDIR: join(work, "tmp") },
  });
}

function hiddenOk(line: string, opts: { hideNix: boolean }): string {
  const r = hidden(line, opts);
  if (r.status !== 0) throw new Error(`${line}: exit ${r.status}\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** regrtest's JUnit XML → outcome per test id. */
function outcomes(xml: string): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const name = /\bname="([^"]*)"/.exec(m[1]!)?.[1];
    if (name === undefined) continue;
    const body = m[3] ?? "";
    const outcome: Outcome = /<failure\b/.test(body) ? "failed" : /<error\b/.test(body) ? "error" : /<skipped\b/.test(body) ? "skipped" : "passed";
    out.set(name, outcome);
  }
  return out;
}

/** Runs the chosen modules with `python` (in a fresh directory, so that their scratch files are
 *  apart); the JUnit results and regrtest's output. */
function regrtest(python: string, tag: string, hideNix: boolean): { results: Map<string, Outcome>; output: string } {
  const dir = join(work, `regrtest-${tag}`);
  const xml = join(dir, "junit.xml");
  // -j2: two worker processes (the machine's cores); regrtest exits 2 when a test failed, which the
  // recorded failures make the normal case: the JUnit file says what happened.
  const r = hidden(`mkdir -p '${dir}' && cd '${dir}' && ${python} -m test -j2 --junit-xml '${xml}' ${MODULES.join(" ")}; echo "regrtest exit $?"`, { hideNix });
  const output = r.stdout + r.stderr;
  if (!existsSync(xml)) throw new Error(`regrtest with ${python} wrote no ${xml}:\n${output}`);
  return { results: outcomes(readFileSync(xml, "utf8")), output };
}

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(join(tmpdir(), "ext-real-"));
  chmodSync(work, 0o755);
  cpython = build("cpython", COMPILE_MS);
  git = build("git", COMPILE_MS);
  ns = openNamespace();
  // Both shadow the host's /usr/bin/python3 and /usr/bin/git (Debian 12 has python3-minimal; git where installed).
  const add = ns.ext(["add", "--allow-shadow", "cpython", "git"]);
  if (add.status !== 0) throw new Error(`ext add failed (${add.status}):\n${add.stderr}`);
  hiddenOk(`mkdir -p '${join(work, "home")}' '${join(work, "tmp")}'`, { hideNix: false });
}, COMPILE_MS);

afterAll(() => {
  ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("CPython compiled with its prefix in the store", () => {
  it("its compiled-in prefix is the relocated store path: /usr/bin/python3 finds its library there", () => {
    const out = hiddenOk(`/usr/bin/python3 -c 'import sys, os, sysconfig; print(sys.prefix); print(os.__file__); print(sysconfig.get_config_var("prefix"))'`, { hideNix: true });
    expect(out.trim().split("\n")).toEqual([relocated(cpython), `${relocated(cpython)}/lib/python3.11/os.py`, relocated(cpython)]);
  });

  it("the host's standard library is hidden: nothing outside /usr/store is on sys.path", () => {
    const out = hiddenOk(`/usr/bin/python3 -c 'import sys, json; print(json.dumps(sys.path[1:]))'`, { hideNix: true });
    const path = JSON.parse(out) as string[];
    expect(path.length).toBeGreaterThan(0);
    for (const p of path) expect(p.startsWith(`${relocated(cpython)}/`), p).toBe(true);
  });

  it("python3 -m venv from /usr/bin makes a venv on the relocated standard library, with pip from ensurepip", () => {
    const venv = join(work, "venv");
    const out = hiddenOk(
      `/usr/bin/python3 -m venv '${venv}' && cat '${venv}/pyvenv.cfg' && '${venv}/bin/python' -c 'import sys, os, json; print(json.dumps([sys.prefix, sys.base_prefix, os.__file__]))' && '${venv}/bin/python' -m pip --version`,
      { hideNix: true },
    );
    const lines = out.trim().split("\n");
    expect(out).toContain(`home = ${relocated(cpython)}/bin\n`);
    expect(JSON.parse(lines.at(-2)!)).toEqual([venv, relocated(cpython), `${relocated(cpython)}/lib/python3.11/os.py`]);
    expect(lines.at(-1)).toMatch(new RegExp(`^pip \\S+ from ${venv}/lib/python3.11/site-packages/pip \\(python 3\\.11\\)$`));
  });

  describe("its own regression tests", () => {
    let store: Map<string, Outcome>;
    let usr: Map<string, Outcome>;
    let output = "";

    beforeAll(() => {
      const a = regrtest(`${cpython}/bin/python3`, "nix", false);
      const b = regrtest("/usr/bin/python3", "usr", true);
      store = a.results;
      usr = b.results;
      output = `--- /nix/store\n${a.output}\n--- /usr/store\n${b.output}`;
    }, 1_800_000);

    const byOutcome = (m: Map<string, Outcome>, o: Outcome) => [...m].filter(([, v]) => v === o).map(([k]) => k).sort();

    it("every chosen module ran", () => {
      for (const mod of MODULES) expect([...usr.keys()].some((k) => k.startsWith(`test.${mod}.`)), `${mod}\n${output}`).toBe(true);
    });

    it("the same result for every test from /usr/store as from /nix/store", () => {
      expect(Object.fromEntries(usr)).toEqual(Object.fromEntries(store));
    });

    it("the recorded results: total, failures, errors, skips", () => {
      expect({
        total: usr.size,
        failed: byOutcome(usr, "failed"),
        errors: byOutcome(usr, "error"),
        skipped: byOutcome(usr, "skipped").length,
      }, output).toEqual(EXPECTED);
    });
  });
});

describe("git compiled with its exec path, templates and shell in the store", () => {
  // One workflow, from /usr/bin with /nix hidden and from /nix/store: init from the compiled-in
  // templates, and from a template directory whose hook then runs on every commit; a submodule
  // (git-submodule is a script run by the store's dash, git's SHELL_PATH); clones over file:// (git
  // starts git-upload-pack from its exec path). It prints what it saw, store paths as @GIT@/@DASH@.
  const WORKFLOW = String.raw`set -eu
g() { "$GIT" "$@"; }
norm() { sed -e 's|/[a-z]*/store/[a-z0-9]*-git-2[^/]*|@GIT@|g' -e 's|/[a-z]*/store/[a-z0-9]*-dash-[^/]*|@DASH@|g'; }
export GIT_AUTHOR_DATE='2001-01-01T00:00:00Z' GIT_COMMITTER_DATE='2001-01-01T00:00:00Z'
rm -rf "$W"; mkdir -p "$W"; cd "$W"
g config --global user.name Tester; g config --global user.email tester@example.invalid
g config --global protocol.file.allow always; g config --global init.defaultBranch main
echo "exec-path $(g --exec-path | norm)"
echo "submodule-shell $(head -1 "$(g --exec-path)/git-submodule" | norm)"
g init -q plain
echo "templates $(ls plain/.git/hooks | grep -c '\.sample$') samples; $(cat plain/.git/description)"
mkdir -p tpl/hooks
printf '#!/bin/sh
echo "Hooked-By: template" >> "$1"
' > tpl/hooks/commit-msg
chmod +x tpl/hooks/commit-msg
g init -q --template="$W/tpl" lib
(cd lib && echo lib > lib.txt && g add lib.txt && g commit -q -m 'lib: first')
g init -q --template="$W/tpl" app
cd app
echo app > app.txt; g add app.txt; g commit -q -m 'app: first'
g submodule --quiet add "file://$W/lib" lib
g commit -q -m 'app: lib as a submodule'
echo "message $(g log -1 --format=%B | tr '
' '|')"
echo "submodule $(g submodule status | cut -c 43-)"
cd "$W"
g clone -q --recurse-submodules "file://$W/app" copy
echo "clone $(cat copy/app.txt) $(cat copy/lib/lib.txt) $(cd copy && g log --format=%s | tr '
' '|')"
echo "fsck $(cd copy && g fsck --no-progress 2>&1 | wc -l)"
`;
  const workflow = (gitBin: string, dir: string) => {
    const script = join(work, "workflow.sh");
    writeFileSync(script, WORKFLOW);
    return `GIT='${gitBin}' W='${dir}' sh '${script}'`;
  };

  it("the workflow passes from /usr/bin with /nix and the host's git hidden, as from /nix/store", () => {
    const fromUsr = hiddenOk(workflow("/usr/bin/git", join(work, "git-usr")), { hideNix: true });
    const fromStore = hiddenOk(workflow(`${git}/bin/git`, join(work, "git-nix")), { hideNix: false });
    expect(fromUsr).toBe(fromStore);
    expect(fromUsr.trim().split("\n")).toEqual([
      "exec-path @GIT@/libexec/git-core",
      "submodule-shell #!@DASH@/bin/dash",
      "templates 13 samples; Unnamed repository; edit this file 'description' to name the repository.",
      // The template's commit-msg hook ran on every commit (lib's too: the clone has its line).
      "message app: lib as a submodule|Hooked-By: template||",
      "submodule lib (heads/main)",
      "clone app lib app: lib as a submodule Hooked-By: template|app: first Hooked-By: template|",
      "fsck 0",
    ]);
  });
});
