import { describe, expect, it } from "vitest";
import { helpText, parseHelp } from "../../helpers/help.js";

// Issue 6: `--help` is the manual — every command has a description and examples.

describe("ext --help", () => {
  it("lists the commands and the global options", async () => {
    const top = await helpText(["--help"]);
    for (const word of ["search <query>", "show <package>", "doctor", "completion <shell>", "--json", "--quiet", "--verbose"]) expect(top).toContain(word);
  });

  it("every command has a description and at least one example", async () => {
    const top = parseHelp(await helpText(["--help"]));
    expect(top.commands.length).toBeGreaterThan(10);
    const missing: string[] = [];
    for (const c of top.commands) {
      expect(c.description, c.name).not.toBe("");
      const help = await helpText([c.name, "--help"]);
      if (!/^Examples:\n {2}.*\bext\b/m.test(help)) missing.push(c.name);
    }
    expect(missing).toEqual([]);
  });
});
