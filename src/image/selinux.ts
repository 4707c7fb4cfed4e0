import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.js";

// SELinux labels for an image, decided when it is built. On an SELinux host (Fedora Atomic, Bazzite,
// Aurora… enforcing) every file of a merged extension needs a `security.selinux` label, and systemd
// does not relabel at merge time (systemd issue 41574): the label must be in the image. Nix does not
// label its store, so ext gives every file under /usr/store the label the host's policy gives the
// equivalent system path: `…/bin/*` like `/usr/bin/*`, `…/lib*/*` like `/usr/lib/*`, `…/share/man/*`
// like `/usr/share/man/*`, the rest like `/usr/share/*` — never default_t or unlabeled_t.
//
// mkfs.erofs --file-contexts=FILE stores the labels (erofs-utils 1.5 and later, checked: a label
// from FILE replaces one the staged file carries; other xattrs of staged files would be kept, and Nix
// strips those from store paths). ext writes FILE: the host's own file_contexts (for the farm's links
// in /usr/bin, /usr/share/man…) with rules for /usr/store appended, so they come last and win, as
// libselinux takes the last matching rule. The image's bytes are a function of (tree, FILE), and
// FILE's sha256 is part of the image key.

/** `from`: what named the file, for messages (the option, or a tools.json). */
export type LabelSetting = { mode: "auto" } | { mode: "none" } | { mode: "file"; path: string; from?: string };

export interface SelinuxConfig {
  /** SELINUX= of /etc/selinux/config. */
  state: "enforcing" | "permissive" | "disabled";
  /** SELINUXTYPE=, the policy's directory under /etc/selinux. */
  type: string;
}

export interface LabelPolicy {
  /** Where the policy's file_contexts came from. */
  source: string;
  /** The file_contexts text given to mkfs.erofs. */
  text: string;
  sha256: string;
  /** The labels /usr/store's files get. */
  contexts: { usr: string; bin: string; lib: string; share: string; man: string };
}

export function readLabelSetting(option: string | undefined, from = "--selinux-contexts"): LabelSetting {
  if (option === undefined || option === "auto") return { mode: "auto" };
  if (option === "none") return { mode: "none" };
  if (!option.startsWith("/")) throw new UsageError(`--selinux-contexts ${option}: give auto, none or an absolute path to a file_contexts file`);
  return { mode: "file", path: option, from };
}

export function parseSelinuxConfig(text: string): SelinuxConfig | undefined {
  const get = (key: string) => new RegExp(`^\\s*${key}\\s*=\\s*"?([^"\\s#]+)`, "m").exec(text)?.[1];
  const state = get("SELINUX");
  if (state !== "enforcing" && state !== "permissive" && state !== "disabled") return undefined;
  return { state, type: get("SELINUXTYPE") ?? "targeted" };
}

/** The host's SELinux configuration under `root`, if it has one. */
export function readSelinuxConfig(root: string): SelinuxConfig | undefined {
  try {
    return parseSelinuxConfig(readFileSync(join(root, "etc/selinux/config"), "utf8"));
  } catch {
    return undefined;
  }
}

export function policyFileContexts(root: string, config: SelinuxConfig): string {
  return join(root, "etc/selinux", config.type, "contexts/files/file_contexts");
}

/** The labels for images of the system under `root`: from the file named, from the host's policy
 *  when it uses SELinux (auto), or none. */
/** The policy of a setting (an option's or a tools.json's), read on first use, then kept: only a pack
 *  needs it, and a whole file_contexts is costly to parse. A bad setting is an error then, not before. */
export function labelsOnFirstUse(option: string | undefined, root: string, from?: string): () => LabelPolicy | undefined {
  let read = false;
  let policy: LabelPolicy | undefined;
  return () => {
    if (!read) {
      policy = resolveLabels(readLabelSetting(option, from), root);
      read = true;
    }
    return policy;
  };
}

export function resolveLabels(setting: LabelSetting, root: string): LabelPolicy | undefined {
  if (setting.mode === "none") return undefined;
  if (setting.mode === "file") return labelPolicy(readContexts(setting.path, setting.from ?? "--selinux-contexts"), setting.path);
  const config = readSelinuxConfig(root);
  if (!config || config.state === "disabled") return undefined;
  const file = policyFileContexts(root, config);
  return labelPolicy(readContexts(file, `/etc/selinux/config (SELINUXTYPE=${config.type})`), file);
}

function readContexts(path: string, from: string): string {
  try {
    if (!statSync(path).isFile()) throw new Error("not a file");
    return readFileSync(path, "utf8");
  } catch {
    throw new UsageError(`the SELinux file contexts ${path} (named by ${from}) cannot be read`, {
      hint: "install the policy's package, name a file_contexts with --selinux-contexts FILE, or build unlabelled images with --selinux-contexts none",
    });
  }
}

// ---------------------------------------------------------------------------------------------
// file_contexts: `<regex> [<file type>] <context>` per line; libselinux anchors each regex, tries
// the rules without regex characters first, and otherwise takes the last rule that matches.

export interface ContextRule {
  /** The rule's pattern as written. */
  pattern: string;
  regex: RegExp;
  literal: boolean;
  /** "--" file, "-d" directory, "-l" symlink, …; undefined: any. */
  type: string | undefined;
  context: string;
}

/** `keep` picks the patterns worth compiling: a policy has ~5,000, and compiling all of them took
 *  0.34 s here, while the labels ext needs are all under /usr. */
export function parseFileContexts(text: string, keep: (pattern: string) => boolean = () => true): ContextRule[] {
  const rules: ContextRule[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const fields = line.split(/\s+/);
    if (fields.length < 2) continue;
    const [pattern, second, third] = fields as [string, string, string | undefined];
    const type = third === undefined ? undefined : second;
    const context = third ?? second;
    if (!keep(pattern)) continue;
    let regex: RegExp;
    try {
      regex = new RegExp(`^(?:${pattern})$`);
    } catch {
      continue; // a construct JavaScript does not read; such rules never name /usr's main trees
    }
    rules.push({ pattern, regex, literal: !/[.^$?*+|[({\\]/.test(pattern), type, context });
  }
  return rules;
}

/** The context the rules give `path` (a file unless `kind` says otherwise); undefined: none. */
export function lookupContext(rules: readonly ContextRule[], path: string, kind: "--" | "-d" | "-l" = "--"): string | undefined {
  const fits = (r: ContextRule) => (r.type === undefined || r.type === kind) && r.regex.test(path);
  const exact = rules.filter((r) => r.literal && fits(r));
  const hit = exact.length > 0 ? exact[exact.length - 1] : [...rules].reverse().find((r) => !r.literal && fits(r));
  return hit === undefined || hit.context === "<<none>>" ? undefined : hit.context;
}

/** Patterns that may match a path under /usr: `/usr…`, or a first component with regex characters. */
const MAY_MATCH_USR = (pattern: string) => pattern.startsWith("/usr") || /^\/[^/]*[.^$?*+|[({\\]/.test(pattern);

/** The label `policy` gives a path of an image (`/usr/bin/rg`, a file unless `kind` says otherwise):
 *  what mkfs.erofs stores for it, so a label read back from an image can be compared (ext doctor).
 *  Indexed once: literal rules by path, the others last first — ext's /usr/store rules come last,
 *  so a store path (most of an image) is decided by the first few rules tried. */
export function imageLabeller(policy: LabelPolicy): (path: string, kind: "--" | "-d" | "-l") => string | undefined {
  const rules = parseFileContexts(policy.text, MAY_MATCH_USR);
  const literal = new Map<string, ContextRule[]>();
  for (const r of rules) {
    if (!r.literal) continue;
    literal.set(r.pattern, [...(literal.get(r.pattern) ?? []), r]);
  }
  const patterns = rules.filter((r) => !r.literal).reverse();
  return (path, kind) => {
    const fits = (r: ContextRule) => r.type === undefined || r.type === kind;
    const exact = (literal.get(path) ?? []).filter(fits);
    const hit = exact.length > 0 ? exact[exact.length - 1] : patterns.find((r) => fits(r) && r.regex.test(path));
    return hit === undefined || hit.context === "<<none>>" ? undefined : hit.context;
  };
}

/** The file_contexts for images: the policy's own rules, then the rules for /usr/store. */
export function labelPolicy(policyText: string, source: string): LabelPolicy {
  const rules = parseFileContexts(policyText, MAY_MATCH_USR);
  const need = (path: string, kind: "--" | "-d" = "--") => {
    const c = lookupContext(rules, path, kind);
    if (c === undefined) throw new UsageError(`the SELinux file contexts ${source} give no label to ${path}`, { hint: "name the policy's complete file_contexts with --selinux-contexts FILE" });
    return c;
  };
  const contexts = {
    usr: need("/usr", "-d"),
    bin: need("/usr/bin/ext-label-probe"),
    lib: need("/usr/lib/ext-label-probe.so"),
    share: need("/usr/share/ext-label-probe"),
    man: need("/usr/share/man/man1/ext-label-probe.1.gz"),
  };
  const store = [
    "",
    "# ext: Nix store paths relocated to /usr/store, labelled like the system paths they stand for",
    `/usr/store(/.*)?\t${contexts.usr}`,
    `/usr/store/[^/]+/share(/.*)?\t${contexts.share}`,
    `/usr/store/[^/]+/(lib|lib64)(/.*)?\t${contexts.lib}`,
    `/usr/store/[^/]+/(bin|sbin|libexec)(/.*)?\t${contexts.bin}`,
    `/usr/store/[^/]+/share/man(/.*)?\t${contexts.man}`,
    "",
  ].join("\n");
  const text = policyText.replace(/\n*$/, "\n") + store;
  return { source, text, sha256: createHash("sha256").update(text).digest("hex"), contexts };
}
