import { describe, expect, it } from "vitest";
import { parser } from "../../../src/cli/main.js";
import { helpCommands } from "../../helpers/help.js";
import { MEANT, suggestCommand, unknownOption } from "../../../src/cli/suggest-command.js";
import { UsageError } from "../../../src/errors.js";

// Issue 19: an unknown command is answered with what the person meant (`install` → add, `info` →
// show), else the closest spelling, and the hint never names a command ext does not have.

const commands = helpCommands;

/** The usage error the real parser gives for argv (it fails before any command runs). */
async function usageError(argv: string[]): Promise<UsageError> {
  try {
    await parser(argv).exitProcess(false).parseAsync();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error(`ext ${argv.join(" ")} did not fail`);
}

describe("suggestions for unknown commands", () => {
  it.each([
    ["install", "add"], ["uninstall", "remove"], ["rm", "remove"], ["info", "show"], ["ls", "list"],
    ["upgrade-all", "upgrade"], ["update", "upgrade"], ["history", "generations"], ["revert", "rollback"],
    ["find", "search"], ["clean", "gc"], ["check", "doctor"],
    // spelling
    ["serch", "search"], ["lst", "list"], ["statsu", "status"], ["generatoins", "generations"], ["rollbak", "rollback"],
    ["List", "list"], ["INSTALL", "add"],
  ])("%s → %s", async (typed, meant) => {
    expect(suggestCommand(typed, await commands())).toBe(meant);
  });

  it("nothing close: no guess", async () => {
    expect(suggestCommand("xyzzy", await commands())).toBeUndefined();
  });

  it("every meaning in the table is a command ext has", async () => {
    const have = new Set(await commands());
    expect(Object.values(MEANT).filter((c) => !have.has(c))).toEqual([]);
  });

  it("a command ext lacks is never suggested, even one in the table", () => {
    expect(suggestCommand("install", ["list", "remove"])).toBeUndefined();
  });
});

describe("the parser's answer", () => {
  it("ext install jq: unknown command 'install', did you mean 'ext add'", async () => {
    const e = await usageError(["install", "jq"]);
    expect(e.message).toBe("unknown command 'install'");
    expect(e.hint).toMatch(/^did you mean 'ext add'\?/);
    expect(e.exitCode).toBe(2);
  });

  it("ext info jq: ext show, not ext diff", async () => {
    expect((await usageError(["info", "jq"])).hint).toMatch(/^did you mean 'ext show'\?/);
  });

  it("every hint names only commands that exist", async () => {
    const have = new Set(await commands());
    const words = [...Object.keys(MEANT), "serch", "lst", "xyzzy", "instal", "remve", "shwo", "doctr", "a", "zz", "setupp", "boots", "__complet"];
    for (const word of words) {
      const e = await usageError(["--root", "/nonexistent", word, "jq"]);
      const named = [...(e.hint ?? "").matchAll(/'ext ([\w-]+)/g)].map((m) => m[1] ?? "");
      expect(named.filter((n) => n !== "--help" && !have.has(n)), `ext ${word}: ${e.hint}`).toEqual([]);
      expect(e.message, word).toBe(`unknown command '${word}'`);
    }
  });

  it.each([
    [["add", "--allow-unfre", "jq"], "allow-unfre", "allow-unfree", "add"],
    [["list", "--jsn"], "jsn", "json", "list"],
    [["add", "jq", "--prio", "3"], "prio", "priority", "add"],
    [["--jsn", "list"], "jsn", "json", "list"],
    [["rollback", "--too", "3"], "too", "to", "rollback"],
  ])("ext %j: the unknown option, and the one meant (not 'missing its argument')", async (argv, typed, meant, command) => {
    const e = await usageError(argv);
    expect(e.message).toBe(`unknown option --${typed} for 'ext ${command}'`);
    expect(e.hint).toBe(`did you mean --${meant}? ('ext ${command} --help' lists the options)`);
  });

  it("an option of another command is unknown here, and nothing is made up", async () => {
    const e = await usageError(["list", "--zzzzzz"]);
    expect(e.message).toBe("unknown option --zzzzzz for 'ext list'");
    expect(e.hint).toBe("'ext list --help' lists the options");
    expect(unknownOption(["list", "--no-wait", "--json", "-q", "--", "--x"], ["wait", "json", "q"])).toBeUndefined();
  });

  it("a known command keeps its own help in the hint", async () => {
    const e = await usageError(["list", "extra"]);
    expect(e.message).toMatch(/Unknown argument: extra/);
    expect(e.hint).toMatch(/see 'ext list --help'/);
  });
});
