import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { completionScript } from "../../../src/cli/commands/completion.js";
import { cliSpec, type CliSpec } from "../../../src/cli/completion-spec.js";
import { COMMANDS } from "../../../src/cli/commands/index.js";
import { BUILTIN_OPTIONS, GLOBAL_OPTIONS } from "../../../src/cli/global-options.js";
import { helpCommands } from "../../helpers/help.js";

// The scripts are generated from the command list the parser is made of (src/cli/commands/index.ts),
// then run by the real shells against a stand-in `ext` on PATH (it answers `__complete` and says
// which --root it was given). test/unit/cli/one-source.test.ts checks --help, completion and the
// man page list the same commands and options.

let spec: CliSpec;
let bin: string;


beforeAll(async () => {
  spec = cliSpec({ commands: COMMANDS, globals: GLOBAL_OPTIONS, builtins: BUILTIN_OPTIONS });
  bin = mkdtempSync(join(tmpdir(), "ext-completion-"));
  writeFileSync(join(bin, "ext"), `#!/bin/sh
root=none
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --root=*) root=\${1#--root=}; shift ;;
    __complete) what=$2; shift 2 ;;
    *) shift ;;
  esac
done
case "$what" in
  installed) echo jq; echo ripgrep; [ "$root" != none ] && echo "at$(echo "$root" | tr / _)" ;;
  generations) echo 1; echo 2; echo 3 ;;
esac
exit 0
`);
  chmodSync(join(bin, "ext"), 0o755);
  for (const shell of ["bash", "zsh", "fish"] as const) writeFileSync(join(bin, `completion.${shell}`), completionScript(shell, spec));
});

afterAll(() => {
  if (bin) rmSync(bin, { recursive: true, force: true });
});

describe("the command table is the command list", () => {
  it("lists every command of 'ext --help' with its own options", async () => {
    expect(spec.commands.map((c) => c.name)).toEqual(await helpCommands());
    for (const name of ["add", "remove", "list", "search", "show", "generations", "rollback", "gc", "status", "build", "doctor", "completion"]) {
      expect(spec.commands.map((c) => c.name)).toContain(name);
    }
    const cmd = (name: string) => spec.commands.find((c) => c.name === name)!;
    expect(cmd("remove").args).toBe("installed");
    expect(cmd("upgrade").args).toBe("installed");
    expect(cmd("apply").args).toBe("file");
    expect(cmd("completion").args).toEqual(["bash", "zsh", "fish"]);
    expect(cmd("rollback").options).toEqual([expect.objectContaining({ name: "to", value: "generations" })]);
    expect(cmd("build").options).toEqual([expect.objectContaining({ name: "output", short: "o", value: "file" }), expect.objectContaining({ name: "manifest", short: "m", value: "file" }), expect.objectContaining({ name: "allow-unfree" }), expect.objectContaining({ name: "bootstrap" })]);
    expect(cmd("show").options).toEqual([expect.objectContaining({ name: "no-build", description: "metadata only, without building anything" })]);
    expect(cmd("add").options.map((o) => o.name).sort()).toEqual(["allow-shadow", "allow-unfree", "priority"]);
    // Global options once, at the top, not repeated per command.
    expect(spec.globals.map((o) => o.name)).toEqual(expect.arrayContaining(["root", "source", "json", "quiet", "verbose", "no-wait", "name", "compression", "help", "version"]));
    expect(spec.globals.find((o) => o.name === "root")?.value).toBe("dir");
    expect(spec.globals.find((o) => o.name === "compression")?.value).toBe("compression");
    expect(spec.globals.find((o) => o.name === "quiet")?.short).toBe("q");
    // The hidden command the scripts call is not offered.
    expect(spec.commands.map((c) => c.name)).not.toContain("__complete");
  });
});

describe("bash", () => {
  function complete(words: string[]): string[] {
    const script = `source ${join(bin, "completion.bash")}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}
_ext; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const out = execFileSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}` } });
    return out.split("\n").filter(Boolean);
  }

  it("is valid bash", () => {
    execFileSync("bash", ["-n", join(bin, "completion.bash")]);
  });

  it.each([
    [["ext", "re"], ["remove", "repair"]],
    [["ext", "rem"], ["remove"]],
    [["ext", "sh"], ["show"]],
    [["ext", "remove", ""], ["jq", "ripgrep"]],
    [["ext", "--root", "/mnt/x", "remove", "r"], ["ripgrep"]],
    [["ext", "--root", "=", "/mnt/x", "remove", "at"], ["at_mnt_x"]],
    [["ext", "--root=/srv", "remove", "at"], ["at_srv"]],
    [["ext", "rollback", "--to", ""], ["1", "2", "3"]],
    [["ext", "--compression", "lz4"], ["lz4", "lz4hc"]],
    [["ext", "completion", ""], ["bash", "zsh", "fish"]],
    [["ext", "add", "--p"], ["--priority"]],
    [["ext", "--no-w"], ["--no-wait"]],
    [["ext", "--source", "nixpkgs", "sta"], ["status"]],
    [["ext", "search", "--source", ""], []],
  ])("%j → %j", (words, expected) => {
    expect(complete(words)).toEqual(expected);
  });
});

describe("fish", () => {
  function complete(line: string): string[] {
    const out = execFileSync("fish", ["--no-config", "-c", `source ${join(bin, "completion.fish")}; complete -C '${line}'`], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}` },
    });
    return out.split("\n").filter(Boolean).map((l) => l.split("\t")[0]!);
  }

  it("is valid fish", () => {
    execFileSync("fish", ["--no-config", "-n", join(bin, "completion.fish")]);
  });

  it("commands, options, installed names (with --root), generations, shells", () => {
    expect(complete("ext re")).toEqual(["remove", "repair"]);
    expect(complete("ext remove ")).toEqual(["jq", "ripgrep"]);
    expect(complete("ext --root /mnt/x remove a")).toEqual(["at_mnt_x"]);
    expect(complete("ext rollback --to ")).toEqual(["1", "2", "3"]);
    expect(complete("ext completion ")).toEqual(["bash", "fish", "zsh"]);
    expect(complete("ext show --no")).toEqual(expect.arrayContaining(["--no-build", "--no-wait"]));
    expect(complete("ext --compression ")).toEqual(["lz4", "lz4hc", "none"]);
  });
});

describe("zsh", () => {
  it("is valid zsh", () => {
    execFileSync("zsh", ["-n", join(bin, "completion.zsh")]);
  });

  // zsh completes only inside its line editor: drive one through a pseudo-terminal (zpty).
  function complete(line: string): string {
    const driver = `
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='> '; PATH=${bin}:\\$PATH; autoload -U compinit; compinit -u; source ${join(bin, "completion.zsh")}; print READY"
out=""; while zpty -r -t z l; do out+=$l; done
for i in {1..100}; do [[ $out == *READY*'> '* ]] && break; sleep 0.05; while zpty -r -t z l; do out+=$l; done; done
zpty -w -n z ${JSON.stringify(line)}$'\\t'
out=""
for i in {1..60}; do sleep 0.05; while zpty -r -t z l; do out+=$l; done; done
print -r -- $out
zpty -d z`;
    const raw = execFileSync("zsh", ["-f", "-c", driver], { encoding: "utf8", timeout: 30_000 });
    // Strip terminal control sequences; what is left is the line and the listed matches.
    return raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/[\r\x07\b]/g, " ");
  }

  it("completes commands, installed names and shells", () => {
    expect(complete("ext sh")).toMatch(/ext show /);
    expect(complete("ext remove ")).toMatch(/jq\s+ripgrep/);
    expect(complete("ext --root /mnt/x remove a")).toMatch(/at_mnt_x/);
    expect(complete("ext completion f")).toMatch(/ext completion fish /);
  });
});
