import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Argv } from "yargs";
import { parser } from "../../../src/cli/main.js";
import { helpText, parseHelp } from "../../../src/cli/commands/completion.js";
import { formatDoctor } from "../../../src/cli/commands/doctor.js";
import { SCHEMA_DIR, expectValid, schemaNames, validator } from "./schemas.js";

// schemas/cli/: one JSON Schema per command's --json output, plus the error document. The real
// outputs are checked against them in test/integration/cli-json.test.ts; here the schemas themselves.

/** Which schema documents each command's --json output. */
const COMMAND_SCHEMAS: Record<string, string> = {
  add: "transaction",
  remove: "transaction",
  rollback: "transaction",
  list: "list",
  generations: "generations",
  gc: "gc",
  status: "status",
  build: "build",
  search: "search",
  show: "show",
  doctor: "doctor",
  completion: "completion",
};

describe("schemas/cli", () => {
  it("every schema compiles in ajv's strict mode and says what it is", () => {
    expect(schemaNames()).toEqual(expect.arrayContaining([...new Set(Object.values(COMMAND_SCHEMAS)), "error"]));
    for (const name of schemaNames()) expect(validator(name).schema).toMatchObject({ $schema: expect.any(String), title: expect.stringMatching(/--json/) });
  });

  it("the error document: code, message, hint, details — nothing else", () => {
    expectValid("error", { error: { code: "unknown-package", message: "unknown package 'x'", hint: "did you mean 'y'?", details: null } });
    expect(() => expectValid("error", { error: { code: "x", message: "m" } })).toThrow(/hint/);
    expect(() => expectValid("error", { error: { code: "x", message: "m", hint: null, details: null }, stack: "…" })).toThrow();
  });

  it("a doctor warning or error must carry a fix", () => {
    const finding = { check: "init", status: "warning", message: "PID 1 is not systemd", fix: null };
    expect(() => expectValid("doctor", { ok: true, root: "/", summary: { ok: 0, info: 0, warning: 1, error: 0 }, findings: [finding] })).toThrow();
    const fixed = { ...finding, fix: "boot with systemd" };
    const doc = { ok: true, root: "/", summary: { ok: 0, info: 0, warning: 1, error: 0 }, findings: [fixed] };
    expectValid("doctor", doc);
    expect(formatDoctor(doc as never).join("\n")).toMatch(/fix: boot with systemd/);
  });
});

describe("every command's --json output has a schema", async () => {
  const makeParser = parser as unknown as (argv: string[]) => Argv<unknown>;
  const commands = parseHelp(await helpText(makeParser, ["--help"])).commands.map((c) => c.name);
  const covered = commands.filter((c) => COMMAND_SCHEMAS[c] !== undefined);

  it.each(covered)("%s", (command) => {
    expect(existsSync(join(SCHEMA_DIR, `${COMMAND_SCHEMAS[command]}.json`))).toBe(true);
  });
  // Commands added by other work whose output is not documented in schemas/cli/ yet.
  for (const command of commands.filter((c) => COMMAND_SCHEMAS[c] === undefined)) it.todo(`${command} --json: write schemas/cli/<schema>.json and test it in cli-json.test.ts`);
});
