import { describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
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
  apply: "apply",
  diff: "diff",
  export: "export",
  upgrade: "upgrade",
  untrack: "untrack",
  setup: "setup",
  boot: "boot",
  publish: "publish",
  subscribe: "subscribe",
  unsubscribe: "unsubscribe",
  pull: "pull",
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

/** A schema of schemas/cli/ (or of schemas/, with "../") as parsed JSON. */
function schemaJson(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(SCHEMA_DIR, `${name}.json`), "utf8")) as Record<string, unknown>;
}

describe("schemas/cli: the copies stay the same", () => {
  it("a definition shared by name (preview, diff, image, lockUpdate…) is the same in every schema", () => {
    const seen = new Map<string, { schema: string; def: unknown }>();
    let shared = 0;
    for (const name of schemaNames()) {
      const defs = (schemaJson(name)["definitions"] ?? {}) as Record<string, unknown>;
      for (const [key, def] of Object.entries(defs)) {
        const first = seen.get(key);
        if (!first) seen.set(key, { schema: name, def });
        else {
          shared++;
          expect(def, `definitions.${key} of ${name}.json differs from ${first.schema}.json's`).toEqual(first.def);
        }
      }
    }
    expect(shared).toBeGreaterThan(10);
  });

  it("export.json's tools and lock are schemas/tools.schema.json and schemas/tools.lock.schema.json", () => {
    const defs = schemaJson("export")["definitions"] as Record<string, unknown>;
    for (const [key, file] of [["tools", "../tools.schema"], ["lock", "../tools.lock.schema"]] as const) {
      const { $schema: _s, $id: _i, ...rest } = schemaJson(file);
      const refs = JSON.parse(JSON.stringify(rest).replaceAll('"$ref":"#/$defs/', `"$ref":"#/definitions/${key}/$defs/`)) as unknown;
      expect(defs[key], `export.json definitions.${key}`).toEqual(refs);
    }
  });
});

describe("schemas/cli: what they accept and refuse", () => {
  const image = { sha256: "a".repeat(64), size: 4096, reused: false };
  const diff = { added: [{ name: "jq", version: "1.6" }], removed: [], changed: [], sizeDelta: 1024 };
  const done = { status: "done", generation: 2, previous: 1, diff, image };
  const noop = { status: "noop", generation: 2, previous: 2, reason: "the set is already active" };
  const lock = { file: "/etc/tools.lock.json", written: true };
  const plan = {
    unchanged: false, generation: 1, added: [{ name: "hello", version: "2.12" }], removed: [], changed: [], rebuilt: [], settings: [],
    closure: { before: 100, after: null, delta: null, notBuilt: ["hello"] },
  };

  it("transaction: done has diff and image, noop a reason; add/remove may say what they did to the tracked file", () => {
    expectValid("transaction", done);
    expectValid("transaction", noop);
    expectValid("transaction", { ...done, tracked: { file: "/etc/tools.json", edited: true, lock } });
    expect(() => expectValid("transaction", { ...done, image: undefined })).toThrow(/image/);
    expect(() => expectValid("transaction", { ...noop, diff })).toThrow();
    expect(() => expectValid("transaction", { ...done, tracked: "/etc/tools.json" })).toThrow(/tracked/);
  });

  it("apply: a plan with --dry-run, else the transaction, the lock and the tracked file", () => {
    expectValid("apply", { dryRun: true, file: "/etc/tools.json", plan });
    expectValid("diff", { dryRun: true, file: "/etc/tools.json", plan });
    const applied = { ...done, dryRun: false, file: "/etc/tools.json", lock, tracked: "/etc/tools.json", trackingChanged: true };
    expectValid("apply", applied);
    expectValid("apply", { ...noop, dryRun: false, file: "/etc/tools.json", lock: { ...lock, written: false }, tracked: null, trackingChanged: false });
    expect(() => expectValid("apply", { ...applied, dryRun: true })).toThrow();
    expect(() => expectValid("apply", { ...applied, plan })).toThrow();
    expect(() => expectValid("diff", { dryRun: true, file: "/etc/tools.json", plan: { ...plan, closure: { before: 100 } } })).toThrow(/after/);
  });

  it("upgrade: no transaction with --dry-run or when nothing changed; a lock only with a tracked file", () => {
    const sources = [{ source: "nixpkgs", from: null, to: "github:NixOS/nixpkgs/abc" }];
    expectValid("upgrade", { file: "/etc/tools.json", dryRun: false, sources, plan, transaction: done, lock });
    expectValid("upgrade", { file: null, dryRun: true, sources, plan, transaction: null, lock: null });
    expect(() => expectValid("upgrade", { file: null, dryRun: true, sources, plan, transaction: done, lock: null })).toThrow();
    expect(() => expectValid("upgrade", { file: null, dryRun: false, sources, plan, transaction: done, lock })).toThrow();
    expect(() => expectValid("upgrade", { file: "/etc/tools.json", dryRun: false, sources, plan: { ...plan, unchanged: true }, transaction: done, lock })).toThrow();
  });

  it("setup and boot: one shape per action and step", () => {
    const unit = (u: string) => ({ unit: u, path: `/etc/systemd/system/${u}`, written: true, wantsLink: `/etc/systemd/system/x.wants/${u}`, linked: true });
    const install = {
      action: "install", extCommand: "/usr/bin/ext", units: [unit("ext-boot-select.service"), unit("ext-boot-bless.service")],
      bootState: "created", tries: 3, adopted: null, reloaded: false, warnings: [],
    };
    expectValid("setup", install);
    expectValid("setup", { action: "remove", removed: [] });
    expect(() => expectValid("setup", { ...install, units: [unit("other.service"), unit("ext-boot-bless.service")] })).toThrow();
    expect(() => expectValid("setup", { action: "remove", removed: [], tries: 3 })).toThrow();
    const select = { step: "select", bootId: "b1", generation: 2, how: "pending", triesLeft: 1, runtime: "none", messages: [] };
    expectValid("boot", select);
    expectValid("boot", { step: "bless", status: "skipped", generation: null, message: "nothing to bless" });
    expect(() => expectValid("boot", { ...select, triesLeft: undefined })).toThrow();
    expect(() => expectValid("boot", { ...select, how: "current" })).toThrow();
    expectValid("untrack", { untracked: null });
    expect(() => expectValid("untrack", {})).toThrow(/untracked/);
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
