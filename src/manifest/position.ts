import { parseTree, findNodeAtLocation, printParseErrorCode, getNodeValue, type Node, type ParseError } from "jsonc-parser";

// Where in the text a JSON value is: errors about tools.json name the line and column, so a person
// can jump to it. jsonc-parser gives the syntax tree with offsets (and, used in edit.ts, edits that
// keep the rest of the file as it was).

export interface Position {
  line: number;
  column: number;
}

export type JsonPath = (string | number)[];

export interface ParsedJson {
  text: string;
  root: Node;
  value: unknown;
}

export interface JsonSyntaxProblem {
  position: Position;
  message: string;
  /** Valid JSON, but a key appears twice in one object. */
  duplicate?: boolean;
}

/** 1-based line and column of a character offset. */
export function positionAt(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

const SYNTAX_MESSAGES: Record<string, string> = {
  InvalidSymbol: "unexpected character",
  InvalidNumberFormat: "invalid number",
  PropertyNameExpected: "expected a key in double quotes",
  ValueExpected: "expected a value",
  ColonExpected: "expected ':'",
  CommaExpected: "expected ',' (or a closing bracket)",
  CloseBraceExpected: "expected '}'",
  CloseBracketExpected: "expected ']'",
  EndOfFileExpected: "expected the end of the file (only one JSON value is allowed)",
  InvalidCommentToken: "comments are not allowed in JSON",
  UnexpectedEndOfComment: "unterminated comment",
  UnexpectedEndOfString: "unterminated string",
  UnexpectedEndOfNumber: "unterminated number",
  InvalidUnicode: "invalid \\u escape",
  InvalidEscapeCharacter: "invalid escape character",
  InvalidCharacter: "invalid character in a string (control characters must be escaped)",
};

/** Parses strict JSON (no comments, no trailing commas); returns the problems instead of throwing. */
export function parseJson(text: string): { ok: true; parsed: ParsedJson } | { ok: false; problems: JsonSyntaxProblem[] } {
  if (text.trim().length === 0) return { ok: false, problems: [{ position: positionAt(text, text.length), message: "the file is empty" }] };
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const problems: JsonSyntaxProblem[] = errors.map((e) => {
    const code = printParseErrorCode(e.error);
    return { position: positionAt(text, e.offset), message: SYNTAX_MESSAGES[code] ?? code };
  });
  if (root === undefined && problems.length === 0) {
    problems.push({ position: positionAt(text, text.length), message: text.trim().length === 0 ? "the file is empty" : "expected a JSON value" });
  }
  if (problems.length > 0 || root === undefined) return { ok: false, problems };
  const duplicate = firstDuplicateKey(root);
  if (duplicate) {
    return { ok: false, problems: [{ position: positionAt(text, duplicate.offset), message: `the key ${JSON.stringify(duplicate.value)} appears twice in the same object`, duplicate: true }] };
  }
  return { ok: true, parsed: { text, root, value: getNodeValue(root) as unknown } };
}

/** JSON allows a key twice and keeps the last; in a tools.json that is always a mistake. */
function firstDuplicateKey(node: Node): Node | undefined {
  if (node.type === "object") {
    const seen = new Set<string>();
    for (const property of node.children ?? []) {
      const key = property.children?.[0];
      if (key && typeof key.value === "string") {
        if (seen.has(key.value)) return key;
        seen.add(key.value);
      }
    }
  }
  for (const child of node.children ?? []) {
    const found = firstDuplicateKey(child);
    if (found) return found;
  }
  return undefined;
}

/** RFC 6901 pointer (as Ajv's instancePath) → path segments; array indices become numbers. */
export function pointerToPath(pointer: string, root?: Node): JsonPath {
  if (pointer === "" || pointer === "/") return [];
  const raw = pointer.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const path: JsonPath = [];
  let node: Node | undefined = root;
  for (const segment of raw) {
    const isIndex = node?.type === "array" || (node === undefined && /^\d+$/.test(segment));
    const step: string | number = isIndex ? Number(segment) : segment;
    path.push(step);
    node = node ? findNodeAtLocation(node, [step]) : undefined;
  }
  return path;
}

/** Where a value starts; `key: true` points at its key instead (for "unknown key" errors). */
export function positionOf(parsed: ParsedJson, path: JsonPath, opts: { key?: boolean } = {}): Position {
  const node = nodeAt(parsed.root, path);
  if (!node) return positionAt(parsed.text, parsed.root.offset);
  if (opts.key && node.parent?.type === "property") {
    const keyNode = node.parent.children?.[0];
    if (keyNode) return positionAt(parsed.text, keyNode.offset);
  }
  return positionAt(parsed.text, node.offset);
}

export function nodeAt(root: Node, path: JsonPath): Node | undefined {
  return path.length === 0 ? root : findNodeAtLocation(root, path);
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$+-]*$/;

/** `packages.ripgrep.outputs[0]`, `packages["python3Packages.black"]`; the root is "(top level)". */
export function showPath(path: JsonPath): string {
  if (path.length === 0) return "(top level)";
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out.length === 0 ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
