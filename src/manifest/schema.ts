import { validateTools, validateLock } from "./validators.generated.js";
import { editDistance } from "../nix/index.js";
import { pointerToPath, positionOf, showPath, type JsonPath, type ParsedJson, type Position } from "./position.js";

// JSON Schema validation (Ajv, compiled ahead of time: scripts/generate-validators.mjs) and the translation of Ajv's
// errors into what a person needs: where (line, column, JSON path) and what was expected.

export interface SchemaProblem {
  path: JsonPath;
  position: Position;
  message: string;
}

interface AjvError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
  propertyName?: string;
  parentSchema?: { properties?: Record<string, unknown> };
  data?: unknown;
}

type Validator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

/** What a value must look like, for the named definitions of the schemas. */
const EXPECTED: Record<string, string> = {
  attrPath: "an attribute path such as 'ripgrep' or 'python3Packages.black' (letters, digits, '_', '-', '+', separated by dots)",
  flakeRef: "a flake reference such as 'nixpkgs', 'github:NixOS/nixpkgs/<rev>' or 'path:/abs/dir'",
  storePath: "a store path /nix/store/<hash>-<name>",
  name: "an extension name: 1–64 characters from A–Z a–z 0–9 _ . -, not starting with '.' or '-'",
  compression: "a compression such as 'none', 'lz4', 'lz4hc' or 'lz4hc,12'",
  output: "an output name such as 'out' or 'man'",
};

export function checkTools(parsed: ParsedJson): SchemaProblem[] {
  return check(validateTools as Validator, parsed);
}

export function checkLock(parsed: ParsedJson): SchemaProblem[] {
  return check(validateLock as Validator, parsed);
}

function check(validate: Validator, parsed: ParsedJson): SchemaProblem[] {
  if (validate(parsed.value)) return [];
  const errors = validate.errors ?? [];
  // A bad key name reports twice (its pattern and "propertyNames"); keep the specific one.
  const problems = errors
    .filter((e) => e.keyword !== "propertyNames")
    .map((e) => describe(e, parsed));
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.position.line}:${p.position.column}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function describe(e: AjvError, parsed: ParsedJson): SchemaProblem {
  const base = pointerToPath(e.instancePath, parsed.root);
  if (e.propertyName !== undefined) {
    // The name of a key is wrong (e.g. a package name with a space).
    const path = [...base, e.propertyName];
    return { path, position: positionOf(parsed, path, { key: true }), message: `invalid name ${JSON.stringify(e.propertyName)}: expected ${expectedFor(e)}` };
  }
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(e.params["additionalProperty"]);
      const path = [...base, key];
      const allowed = Object.keys(e.parentSchema?.properties ?? {});
      const close = allowed.filter((a) => editDistance(a.toLowerCase(), key.toLowerCase()) <= 2);
      const hint = close.length > 0 ? ` (did you mean ${close.map((c) => `"${c}"`).join(" or ")}?)` : "";
      return {
        path,
        position: positionOf(parsed, path, { key: true }),
        message: `unknown key ${JSON.stringify(key)}${hint}; expected one of: ${allowed.join(", ")}`,
      };
    }
    case "required": {
      const key = String(e.params["missingProperty"]);
      return { path: base, position: positionOf(parsed, base), message: `missing the required key ${JSON.stringify(key)}` };
    }
    case "type":
      return at(base, parsed, `expected ${article(String(e.params["type"]))}, got ${typeName(e.data)}`);
    case "const":
      return at(base, parsed, `expected ${JSON.stringify(e.params["allowedValue"])}, got ${JSON.stringify(e.data)}`);
    case "pattern":
    case "minLength":
    case "maxLength":
      return at(base, parsed, `expected ${expectedFor(e)}, got ${JSON.stringify(e.data)}`);
    case "minItems":
      return at(base, parsed, `expected at least ${String(e.params["limit"])} item(s)`);
    case "uniqueItems":
      return at(base, parsed, `expected each item once (items ${String(e.params["j"])} and ${String(e.params["i"])} are the same)`);
    case "minimum":
    case "maximum":
      return at(base, parsed, `expected a number ${String(e.params["comparison"])} ${String(e.params["limit"])}, got ${JSON.stringify(e.data)}`);
    case "minProperties":
      return at(base, parsed, `expected at least ${String(e.params["limit"])} entr${e.params["limit"] === 1 ? "y" : "ies"}`);
    default:
      return at(base, parsed, `expected a value that ${e.message ?? "matches the schema"}`);
  }
}

function at(path: JsonPath, parsed: ParsedJson, message: string): SchemaProblem {
  return { path, position: positionOf(parsed, path), message };
}

function expectedFor(e: AjvError): string {
  const def = /#\/\$defs\/([A-Za-z]+)\//.exec(e.schemaPath)?.[1];
  if (def && EXPECTED[def]) return EXPECTED[def];
  if (/\/properties\/name\//.test(e.schemaPath) || e.schemaPath === "#/properties/name/pattern") return EXPECTED["name"]!;
  if (/compression/.test(e.schemaPath)) return EXPECTED["compression"]!;
  if (/outputs|outPaths/.test(e.schemaPath)) return EXPECTED["output"]!;
  if (e.keyword === "pattern") return `a string matching ${String(e.params["pattern"])}`;
  return `a value that ${e.message ?? "matches the schema"}`;
}

function article(type: string): string {
  const names: Record<string, string> = { object: "an object", array: "an array", integer: "a whole number", number: "a number", string: "a string", boolean: "true or false" };
  return names[type] ?? type;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return Number.isInteger(v) ? `the number ${v}` : `the number ${v}`;
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (typeof v === "boolean") return String(v);
  return typeof v === "object" ? "an object" : typeof v;
}

export { showPath };
