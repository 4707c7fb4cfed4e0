import type { Node } from "jsonc-parser";
import { parseJson, nodeAt, type JsonPath } from "./position.js";
import type { ManifestPackage } from "./types.js";

// Edits that keep a person's file as they wrote it: only the characters of the changed entry move.
// Key order, indentation (spaces or tabs, any width), one-line or expanded entries and line endings
// stay; a new package goes where the keys' order says (alphabetical files stay alphabetical, others
// get it at the end), written in the style of its neighbours.

interface Style {
  unit: string;
  eol: string;
  colon: string;
  /** The file is on one line. */
  compact: boolean;
}

export function detectStyle(text: string): Style {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text.split(/\r?\n/);
  const indents = lines.map((l) => /^([ \t]+)\S/.exec(l)?.[1]).filter((i): i is string => i !== undefined);
  let unit = "  ";
  if (indents.length > 0) {
    if (indents.some((i) => i.startsWith("\t"))) unit = "\t";
    else unit = " ".repeat(Math.min(...indents.map((i) => i.length)));
  }
  const colon = /"\s*:\s/.test(text) || !/"\s*:\S/.test(text) ? ": " : ":";
  return { unit, eol, colon, compact: lines.filter((l) => l.trim().length > 0).length <= 1 };
}

function parseOrThrow(text: string): Node {
  const r = parseJson(text);
  if (!r.ok) throw new Error(`cannot edit: the text is not valid JSON (${r.problems[0]?.message})`);
  return r.parsed.root;
}

function lineIndent(text: string, offset: number): string {
  const start = text.lastIndexOf("\n", offset - 1) + 1;
  return /^[ \t]*/.exec(text.slice(start))?.[0] ?? "";
}

function propertiesOf(object: Node): Node[] {
  return object.children ?? [];
}

function keyOf(property: Node): string {
  return String(property.children?.[0]?.value);
}

/** Text of a value in the file's style; objects on one line unless `expanded` (then indented from `indent`). */
export function valueText(value: unknown, style: Style, expanded: boolean, indent: string): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  const isArray = Array.isArray(value);
  const items: string[] = isArray
    ? (value as unknown[]).map((v) => valueText(v, style, false, ""))
    : Object.entries(value as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}${style.colon}${valueText(v, style, false, "")}`);
  const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
  if (items.length === 0) return `${open}${close}`;
  if (!expanded || isArray || style.compact) {
    const space = style.colon === ": " && !isArray ? " " : "";
    return `${open}${space}${items.join(", ")}${space}${close}`;
  }
  return `${open}${style.eol}${items.map((i) => `${indent}${style.unit}${i}`).join(`,${style.eol}`)}${style.eol}${indent}${close}`;
}

function splice(text: string, start: number, end: number, insert: string): string {
  return text.slice(0, start) + insert + text.slice(end);
}

/** Sets `key` of the object at `path` to `value` (undefined removes it). Returns the new text. */
export function setProperty(text: string, path: JsonPath, key: string, value: unknown, opts: { sortedInsert?: boolean } = {}): string {
  const root = parseOrThrow(text);
  const object = nodeAt(root, path);
  if (!object || object.type !== "object") throw new Error(`cannot edit: no object at ${JSON.stringify(path)}`);
  const style = detectStyle(text);
  const props = propertiesOf(object);
  const index = props.findIndex((p) => keyOf(p) === key);

  if (value === undefined) {
    if (index < 0) return text;
    const p = props[index]!;
    if (props.length === 1) {
      // `{ "a": 1 }` → `{}`
      return splice(text, object.offset + 1, object.offset + object.length - 1, "");
    }
    if (index < props.length - 1) return splice(text, p.offset, props[index + 1]!.offset, "");
    const prev = props[index - 1]!;
    return splice(text, prev.offset + prev.length, p.offset + p.length, "");
  }

  if (index >= 0) {
    const valueNode = props[index]!.children?.[1];
    if (!valueNode) throw new Error("cannot edit: a property without a value");
    const indent = lineIndent(text, props[index]!.offset);
    const expanded = isExpanded(text, valueNode);
    return splice(text, valueNode.offset, valueNode.offset + valueNode.length, valueText(value, style, expanded, indent));
  }

  // A new key: where the order of the existing keys says, in the style of its neighbours.
  const keys = props.map(keyOf);
  const sorted = keys.every((k, i) => i === 0 || keys[i - 1]!.localeCompare(k) <= 0);
  const at = opts.sortedInsert !== false && sorted ? keys.filter((k) => k.localeCompare(key) < 0).length : keys.length;
  const siblingsExpanded = props.some((p) => p.children?.[1] && isExpanded(text, p.children[1]) && (p.children[1].children?.length ?? 0) > 0);

  if (props.length === 0) {
    const outer = lineIndent(text, object.offset);
    const inner = text.slice(object.offset + 1, object.offset + object.length - 1);
    // The packages object gets its entries on their own lines; a package's `{}` stays on its line.
    const oneLine = style.compact || path.length >= 2 || (!inner.includes("\n") && lineHasMore(text, object));
    const propText = `${JSON.stringify(key)}${style.colon}${valueText(value, style, siblingsExpanded, outer + style.unit)}`;
    const pad = style.compact || style.colon !== ": " ? "" : " ";
    const body = oneLine ? `${pad}${propText}${pad}` : `${style.eol}${outer}${style.unit}${propText}${style.eol}${outer}`;
    return splice(text, object.offset + 1, object.offset + object.length - 1, body);
  }
  const ref = props[Math.min(at, props.length - 1)]!;
  const lead = leadOf(text, object, props, Math.min(at, props.length - 1));
  const indent = lineIndent(text, ref.offset);
  const propText = `${JSON.stringify(key)}${style.colon}${valueText(value, style, siblingsExpanded, lead.includes("\n") ? indent : "")}`;
  if (at < props.length) return splice(text, ref.offset, ref.offset, `${propText},${lead}`);
  return splice(text, ref.offset + ref.length, ref.offset + ref.length, `,${lead}${propText}`);
}

/** The whitespace between the token before property i (`{` or `,`) and the property. */
function leadOf(text: string, object: Node, props: Node[], i: number): string {
  const p = props[i]!;
  const from = i === 0 ? object.offset + 1 : text.indexOf(",", props[i - 1]!.offset + props[i - 1]!.length) + 1;
  const lead = text.slice(from, p.offset);
  return /^\s*$/.test(lead) ? lead : " ";
}

function isExpanded(text: string, node: Node): boolean {
  return text.slice(node.offset, node.offset + node.length).includes("\n");
}

/** `"packages": {}` with other content on its line (a one-line object in a multi-line file). */
function lineHasMore(text: string, object: Node): boolean {
  const end = text.indexOf("\n", object.offset + object.length);
  const rest = text.slice(object.offset + object.length, end < 0 ? text.length : end);
  return /[^\s,]/.test(rest);
}

/** The value tools.json holds for a package added on the command line. */
export function packageValue(p: ManifestPackage): ManifestPackage {
  const v: ManifestPackage = {};
  if (p.attr !== undefined) v.attr = p.attr;
  if (p.source !== undefined) v.source = p.source;
  if (p.outputs !== undefined) v.outputs = p.outputs;
  if (p.priority !== undefined) v.priority = p.priority;
  if (p.allowUnfree) v.allowUnfree = true;
  if (p.allowShadow) v.allowShadow = true;
  return v;
}

/** Adds or updates packages and removes others, one edit at a time; unchanged entries keep their text. */
export function editPackages(text: string, changes: { set?: Record<string, ManifestPackage>; remove?: string[] }): string {
  let out = text;
  for (const name of changes.remove ?? []) out = setProperty(out, ["packages"], name, undefined);
  for (const [name, wanted] of Object.entries(changes.set ?? {})) {
    const current = currentValue(out, name);
    if (current === undefined) {
      out = setProperty(out, ["packages"], name, packageValue(wanted));
      continue;
    }
    // Touch only the fields that differ, so the rest of the entry keeps its formatting.
    const value = packageValue(wanted);
    for (const field of ["attr", "source", "outputs", "priority", "allowUnfree", "allowShadow"] as const) {
      const want = value[field];
      if (JSON.stringify(want) !== JSON.stringify(current[field])) out = setProperty(out, ["packages", name], field, want);
    }
  }
  return out;
}

function currentValue(text: string, name: string): ManifestPackage | undefined {
  const r = parseJson(text);
  if (!r.ok) return undefined;
  const packages = (r.parsed.value as { packages?: Record<string, ManifestPackage> }).packages;
  return packages && Object.prototype.hasOwnProperty.call(packages, name) ? packages[name] : undefined;
}
