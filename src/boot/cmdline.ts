import { readFile } from "node:fs/promises";

// The kernel command line options the selector understands:
//   ext.generation=N         boot generation N, this boot only
//   ext.generation=previous  boot the last good generation other than the current one, this boot only
//   ext.disable              no ext extension this boot (also ext.disable=1|yes|true; =0|no|false: ignored)
// The last occurrence of an option wins, as with the kernel's own parameters.

export interface BootCmdline {
  generation?: number | "previous";
  disable: boolean;
  /** Options that were there but not understood: reported, never fatal. */
  invalid: string[];
}

export function parseCmdline(text: string): BootCmdline {
  const out: BootCmdline = { disable: false, invalid: [] };
  for (const word of splitCmdline(text)) {
    const eq = word.indexOf("=");
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    if (key === "ext.generation") {
      if (value === "previous") out.generation = "previous";
      else if (value !== undefined && /^[1-9]\d{0,8}$/.test(value)) out.generation = Number(value);
      else out.invalid.push(word);
    } else if (key === "ext.disable") {
      if (value === undefined || /^(1|yes|true|on)$/i.test(value)) out.disable = true;
      else if (/^(0|no|false|off)$/i.test(value)) out.disable = false;
      else out.invalid.push(word);
    }
  }
  return out;
}

/** Splits like the kernel does: on whitespace, with double quotes grouping. */
function splitCmdline(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  let quoted = false;
  let any = false;
  for (const ch of text) {
    if (ch === '"') {
      quoted = !quoted;
      any = true;
    } else if (!quoted && /\s/.test(ch)) {
      if (any) words.push(cur);
      cur = "";
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any) words.push(cur);
  return words;
}

/** The command line to obey: given explicitly (tests: --cmdline, $EXT_BOOT_CMDLINE, read once by
 *  the CLI), or /proc/cmdline. */
export async function readCmdline(explicit?: string): Promise<string> {
  if (explicit !== undefined) return explicit;
  try {
    return await readFile("/proc/cmdline", "utf8");
  } catch {
    return "";
  }
}

export { readBootId } from "../base/boot-id.js";
