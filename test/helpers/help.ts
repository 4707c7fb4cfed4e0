import { parser } from "../../src/cli/main.js";

// What `ext --help` and `ext COMMAND --help` show, read back from the real parser: the tests compare
// it with the command list (src/cli/commands/index.ts), the completion scripts and the man page.

/** yargs' help text for `args` (e.g. ["add", "--help"]), unwrapped, without printing or exiting. */
export function helpText(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    parser(args).wrap(null).exitProcess(false).parse(args, {}, (err: Error | undefined, _argv: unknown, output: string) => (err ? reject(err) : resolve(output)));
  });
}

export interface HelpOption {
  name: string;
  short?: string;
  /** yargs' tags at the end of the entry: "boolean", "default: true", "required", … */
  tags: string[];
}

export interface ParsedHelp {
  usage: string;
  commands: { name: string; description: string }[];
  options: HelpOption[];
  positionals: { name: string; choices?: string[] }[];
  examples: string[];
}

const TAG = /\s*\[(string|number|boolean|array|count|required|deprecated[^\]]*|default: [^\]]*|choices: [^\]]*)\]\s*$/;

function tagsOf(rest: string): string[] {
  const tags: string[] = [];
  let text = rest;
  for (let m = TAG.exec(text); m; m = TAG.exec(text)) {
    tags.unshift(m[1] ?? "");
    text = text.slice(0, m.index);
  }
  return tags;
}

/** Reads yargs' layout: a usage line, then sections "Commands:", "Positionals:", "Options:", "Examples:". */
export function parseHelp(text: string): ParsedHelp {
  const out: ParsedHelp = { usage: text.split("\n")[0] ?? "", commands: [], options: [], positionals: [], examples: [] };
  let section = "";
  for (const line of text.split("\n")) {
    const header = /^(\w[\w ]*):$/.exec(line);
    if (header) {
      section = header[1] ?? "";
      continue;
    }
    if (section === "Commands") {
      const m = /^ {2}\S+ (\S+)((?: [<[][^\s>\]]+[>\]])*)\s+(.*)$/.exec(line);
      if (m) out.commands.push({ name: m[1] ?? "", description: (m[3] ?? "").trim() });
    } else if (section === "Options") {
      const m = /^\s+(?:-(\w), )?--([\w-]+)\s*(.*)$/.exec(line);
      if (m) out.options.push({ name: m[2] ?? "", ...(m[1] ? { short: m[1] } : {}), tags: tagsOf(m[3] ?? "") });
    } else if (section === "Positionals") {
      const m = /^ {2}(\S+)\s*(.*)$/.exec(line);
      if (!m) continue;
      const choices = tagsOf(m[2] ?? "").find((t) => t.startsWith("choices: "));
      out.positionals.push({
        name: m[1] ?? "",
        ...(choices ? { choices: choices.slice("choices: ".length).split(", ").map((c) => c.replace(/^"|"$/g, "")) } : {}),
      });
    } else if (section === "Examples" && /^ {2}\S/.test(line)) out.examples.push(line.trim());
  }
  return out;
}

/** The commands `ext --help` lists. */
export async function helpCommands(): Promise<string[]> {
  return parseHelp(await helpText(["--help"])).commands.map((c) => c.name);
}
