import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { labelPolicy, lookupContext, parseFileContexts, parseSelinuxConfig, readLabelSetting, resolveLabels } from "../../../src/image/selinux.js";

// A file_contexts in the shape of Fedora's targeted policy (the rules that decide /usr's main trees).
const FEDORA_LIKE = [
  "/.*\tsystem_u:object_r:default_t:s0",
  "/usr(/.*)?\tsystem_u:object_r:usr_t:s0",
  "/usr/(.*/)?bin(/.*)?\tsystem_u:object_r:bin_t:s0",
  "/usr/(.*/)?lib(/.*)?\tsystem_u:object_r:lib_t:s0",
  "/usr/lib/ld-[^/]*\\.so(\\.[^/]*)*\t--\tsystem_u:object_r:ld_so_t:s0",
  "/usr/share/man(/.*)?\tsystem_u:object_r:man_t:s0",
  "/usr/bin/su\t--\tsystem_u:object_r:su_exec_t:s0",
  "/usr/share/ext-label-probe\t-d\tsystem_u:object_r:wrong_t:s0",
  "/usr/lib/debug(/.*)?\t<<none>>",
].join("\n") + "\n";

describe("file_contexts lookups (libselinux's rules)", () => {
  const rules = parseFileContexts(FEDORA_LIKE);
  it("the last matching regex wins; a literal rule beats every regex; file types are honoured", () => {
    expect(lookupContext(rules, "/usr/bin/rg")).toBe("system_u:object_r:bin_t:s0");
    expect(lookupContext(rules, "/usr/local/bin/x")).toBe("system_u:object_r:bin_t:s0");
    expect(lookupContext(rules, "/usr/bin/su")).toBe("system_u:object_r:su_exec_t:s0");
    expect(lookupContext(rules, "/usr/lib/ld-linux-x86-64.so.2")).toBe("system_u:object_r:ld_so_t:s0");
    expect(lookupContext(rules, "/usr/lib/ld-linux-x86-64.so.2", "-l")).toBe("system_u:object_r:lib_t:s0");
    expect(lookupContext(rules, "/usr/share/doc/x")).toBe("system_u:object_r:usr_t:s0");
    expect(lookupContext(rules, "/etc/passwd")).toBe("system_u:object_r:default_t:s0");
    expect(lookupContext(rules, "/usr/lib/debug/x")).toBeUndefined();
  });

  it("/usr/store gets the labels of the paths it stands for, after the policy's rules so that they win", () => {
    const policy = labelPolicy(FEDORA_LIKE, "/etc/selinux/targeted/contexts/files/file_contexts");
    expect(policy.contexts).toEqual({
      usr: "system_u:object_r:usr_t:s0", bin: "system_u:object_r:bin_t:s0", lib: "system_u:object_r:lib_t:s0",
      share: "system_u:object_r:usr_t:s0", man: "system_u:object_r:man_t:s0",
    });
    const all = parseFileContexts(policy.text);
    const store = "/usr/store/0123456789abcdfghijklmnpqrsvwxyz-ripgrep-14.1.0";
    expect(lookupContext(all, `${store}/bin/rg`)).toBe("system_u:object_r:bin_t:s0");
    // Programs in libexec are programs: bin_t, as the policy gives /usr/libexec's.
    expect(lookupContext(all, `${store}/libexec/git-core/git-add`)).toBe("system_u:object_r:bin_t:s0");
    expect(lookupContext(all, `${store}/lib/libpcre2-8.so.0`)).toBe("system_u:object_r:lib_t:s0");
    expect(lookupContext(all, `${store}/lib64/libx.so`)).toBe("system_u:object_r:lib_t:s0");
    expect(lookupContext(all, `${store}/share/man/man1/rg.1.gz`)).toBe("system_u:object_r:man_t:s0");
    expect(lookupContext(all, `${store}/share/doc/README`)).toBe("system_u:object_r:usr_t:s0");
    expect(lookupContext(all, store, "-d")).toBe("system_u:object_r:usr_t:s0");
    expect(lookupContext(all, "/usr/store", "-d")).toBe("system_u:object_r:usr_t:s0");
    // The farm's links keep the policy's labels.
    expect(lookupContext(all, "/usr/bin/rg", "-l")).toBe("system_u:object_r:bin_t:s0");
    // The same policy gives the same text and hash; another policy another hash.
    expect(labelPolicy(FEDORA_LIKE, "x").sha256).toBe(policy.sha256);
    expect(labelPolicy(FEDORA_LIKE.replace("man_t", "mandb_t"), "x").sha256).not.toBe(policy.sha256);
  });

  it("a policy that labels none of /usr's trees is refused with what to do", () => {
    expect(() => labelPolicy("/etc(/.*)?\tsystem_u:object_r:etc_t:s0\n", "/x")).toThrow(/give no label to \/usr/);
  });
});

describe("which policy", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "ext-selinux-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("reads /etc/selinux/config; auto labels only where SELinux is not disabled; none never; FILE always", () => {
    expect(parseSelinuxConfig("# c\nSELINUX=enforcing\nSELINUXTYPE=targeted\n")).toEqual({ state: "enforcing", type: "targeted" });
    expect(parseSelinuxConfig("SELINUX=permissive\n")).toEqual({ state: "permissive", type: "targeted" });
    expect(parseSelinuxConfig("nothing")).toBeUndefined();
    expect(resolveLabels({ mode: "auto" }, root)).toBeUndefined();
    mkdirSync(join(root, "etc/selinux/targeted/contexts/files"), { recursive: true });
    writeFileSync(join(root, "etc/selinux/targeted/contexts/files/file_contexts"), FEDORA_LIKE);
    writeFileSync(join(root, "etc/selinux/config"), "SELINUX=disabled\nSELINUXTYPE=targeted\n");
    expect(resolveLabels({ mode: "auto" }, root)).toBeUndefined();
    writeFileSync(join(root, "etc/selinux/config"), "SELINUX=enforcing\nSELINUXTYPE=targeted\n");
    expect(resolveLabels({ mode: "auto" }, root)?.source).toBe(join(root, "etc/selinux/targeted/contexts/files/file_contexts"));
    expect(resolveLabels({ mode: "none" }, root)).toBeUndefined();
    expect(resolveLabels(readLabelSetting(join(root, "etc/selinux/targeted/contexts/files/file_contexts")), "/nonexistent")?.contexts.bin).toBe("system_u:object_r:bin_t:s0");
  });

  it("an enforcing host whose policy has no file_contexts, a missing FILE, a relative FILE: clear errors", () => {
    mkdirSync(join(root, "etc/selinux"), { recursive: true });
    writeFileSync(join(root, "etc/selinux/config"), "SELINUX=enforcing\nSELINUXTYPE=targeted\n");
    expect(() => resolveLabels({ mode: "auto" }, root)).toThrow(/cannot be read/);
    expect(() => resolveLabels({ mode: "file", path: join(root, "nope") }, root)).toThrow(/cannot be read/);
    expect(() => readLabelSetting("relative/file_contexts")).toThrow(/absolute path/);
  });
});
