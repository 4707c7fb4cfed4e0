import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { COMMANDS } from "../../../src/cli/commands/index.js";
import { BUILTIN_OPTIONS, GLOBAL_OPTIONS } from "../../../src/cli/global-options.js";
import { optionForms, type OptionDescriptors } from "../../../src/cli/command.js";
import { completionScript } from "../../../src/cli/commands/completion.js";
import { cliSpec as specOf } from "../../../src/cli/completion-spec.js";
import { manPage } from "../../../src/cli/man-page.js";
import { ensureBuilt } from "../../helpers/build.js";
import { REPO } from "../../helpers/namespace.js";
import { helpText, parseHelp, type ParsedHelp } from "../../helpers/help.js";

// Issue 13: `ext COMMAND --help`, the completion scripts and the man page agree because they are made
// from one list (src/cli/commands/index.ts). For every command and every option, each of the three
// lists it; the man page checked is the one `npm run build` wrote (dist/ext.1), read through man-db.

const visible = COMMANDS.filter((c) => !c.hidden);
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string; description: string };
const globals = { ...GLOBAL_OPTIONS, ...BUILTIN_OPTIONS } as OptionDescriptors;
const cliSpec = () => specOf({ commands: COMMANDS, globals: GLOBAL_OPTIONS, builtins: BUILTIN_OPTIONS });

let manText: string;
/** The rendered man page's subsection of each command ("   ext add PACKAGES..."), and GLOBAL OPTIONS. */
const manSections = new Map<string, string>();
const help = new Map<string, ParsedHelp>();
const scripts = { bash: "", zsh: "", fish: "" };

beforeAll(async () => {
  ensureBuilt();
  manText = execFileSync("man", ["-l", join(REPO, "dist/ext.1")], { encoding: "utf8", env: { ...process.env, MANWIDTH: "200", MAN_KEEP_FORMATTING: "", LC_ALL: "C.UTF-8" } });
  const commandsPart = manText.slice(manText.indexOf("\nCOMMANDS\n"), manText.indexOf("\nGLOBAL OPTIONS\n"));
  for (const part of commandsPart.split(/\n(?= {3}ext \S)/).slice(1)) manSections.set(/^ {3}ext (\S+)/.exec(part)?.[1] ?? "", part);
  manSections.set("(global)", manText.slice(manText.indexOf("\nGLOBAL OPTIONS\n"), manText.indexOf("\nEXIT STATUS\n")));
  help.set("(global)", parseHelp(await helpText(["--help"])));
  for (const c of visible) help.set(c.name, parseHelp(await helpText([c.name, "--help"])));
  const spec = cliSpec();
  for (const shell of ["bash", "zsh", "fish"] as const) scripts[shell] = completionScript(shell, spec);
});

describe("one source for --help, completion and the man page", () => {
  it("dist/ext.1 is what the command list makes now (npm run build wrote it), and groff reads it without a warning", () => {
    const fresh = manPage({ version: pkg.version, description: pkg.description, commands: COMMANDS, globals: GLOBAL_OPTIONS, builtins: BUILTIN_OPTIONS });
    expect(readFileSync(join(REPO, "dist/ext.1"), "utf8")).toBe(fresh);
    const warnings = execFileSync("groff", ["-man", "-ww", "-z", join(REPO, "dist/ext.1")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(warnings).toBe("");
  });

  it("the same commands, in the same order, everywhere; the hidden one nowhere", () => {
    const names = visible.map((c) => c.name);
    expect(help.get("(global)")?.commands.map((c) => c.name)).toEqual(names);
    expect(cliSpec().commands.map((c) => c.name)).toEqual(names);
    expect([...manSections.keys()].filter((k) => k !== "(global)")).toEqual(names);
    expect(manText).not.toMatch(/__complete/);
    expect(scripts.bash).toMatch(new RegExp(`local commands="${names.join(" ")}"`));
    for (const name of names) {
      expect(scripts.fish, name).toContain(`-a ${name} -d `);
      expect(scripts.zsh, name).toContain(`'${name}:`);
    }
  });

  // One row per command and option: --help shows it under its own name, completion and the man
  // page under the form a person types (`--no-build` for a flag that is on by default).
  const rows = [
    ...Object.entries(globals).map(([name, o]) => ({ command: "(global)", name, o })),
    ...visible.flatMap((c) => Object.entries(c.options).map(([name, o]) => ({ command: c.name, name, o }))),
  ];
  it.each(rows.map((r) => [r.command, r.name, r] as const))("%s --%s", (command, name, { o }) => {
    const forms = optionForms(name, o);
    const shown = help.get(command)!.options.find((h) => h.name === name);
    expect(shown, `ext ${command === "(global)" ? "" : command + " "}--help lists --${name}`).toBeDefined();
    expect(shown?.short).toBe(o.short);
    expect(shown?.tags).toContain(o.type);
    const spec = command === "(global)" ? cliSpec().globals : cliSpec().commands.find((c) => c.name === command)!.options;
    expect(spec.map((s) => s.name)).toContain(forms.long);
    expect(scripts.bash).toContain(`--${forms.long}`);
    expect(scripts.zsh).toContain(`--${forms.long}`);
    expect(scripts.fish).toContain(`-l ${forms.long}`);
    // (man-db renders a tagged paragraph 7 columns in on Debian 12 and trixie, 5 in sid: any indent.)
    expect(manSections.get(command)).toMatch(new RegExp(`^ {3,}${o.short ? `-${o.short}, ` : ""}--${forms.long}\\b`, "m"));
  });

  it("--help has no option the list does not declare (nothing is added to the parser elsewhere)", () => {
    const declared = new Set(Object.keys(globals));
    expect(help.get("(global)")!.options.map((o) => o.name).filter((n) => !declared.has(n))).toEqual([]);
    for (const c of visible) {
      const own = new Set([...declared, ...Object.keys(c.options)]);
      expect(help.get(c.name)!.options.map((o) => o.name).filter((n) => !own.has(n)), c.name).toEqual([]);
    }
  });

  it.each(visible.map((c) => [c.name, c] as const))("%s: positionals and examples in --help and the man page", (_name, c) => {
    const shown = help.get(c.name)!;
    expect(shown.usage).toBe(["ext", c.name, ...c.positionals.map((p) => (p.required ? `<${p.name}${p.variadic ? ".." : ""}>` : `[${p.name}${p.variadic ? ".." : ""}]`))].join(" "));
    const section = manSections.get(c.name)!;
    expect(section.split("\n")[0]?.trim()).toBe(["ext", c.name, ...c.positionals.map((p) => `${p.required ? "" : "["}${p.name.toUpperCase()}${p.variadic ? "..." : ""}${p.required ? "" : "]"}`)].join(" "));
    expect(c.examples.length).toBeGreaterThan(0);
    for (const e of c.examples) {
      const line = e.command.replace(/\$0/g, "ext");
      expect(shown.examples.some((x) => x.startsWith(line)), `--help example: ${line}`).toBe(true);
      expect(section, `man example: ${line}`).toContain(line);
    }
  });
});
