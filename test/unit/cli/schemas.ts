import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";

// The --json output schemas of schemas/cli/, compiled once (strict: a schema mistake is an error).

export const SCHEMA_DIR = new URL("../../../schemas/cli/", import.meta.url).pathname;

let validators: Map<string, ValidateFunction> | undefined;

export function schemaNames(): string[] {
  return readdirSync(SCHEMA_DIR).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, "")).sort();
}

export function validator(name: string): ValidateFunction {
  if (!validators) {
    const ajv = new Ajv({ strict: true, allErrors: true });
    validators = new Map(schemaNames().map((n) => [n, ajv.compile(JSON.parse(readFileSync(join(SCHEMA_DIR, `${n}.json`), "utf8")) as object)]));
  }
  const v = validators.get(name);
  if (!v) throw new Error(`no schema schemas/cli/${name}.json`);
  return v;
}

/** Throws with ajv's errors when `doc` does not match schemas/cli/<name>.json. */
export function expectValid(name: string, doc: unknown): void {
  const v = validator(name);
  if (!v(doc)) throw new Error(`does not match schemas/cli/${name}.json:\n${JSON.stringify(v.errors, null, 2)}\n${JSON.stringify(doc, null, 2).slice(0, 3000)}`);
}
