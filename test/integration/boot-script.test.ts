import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { openNamespace, REPO, type Namespace } from "../helpers/namespace.js";

// templates/ext-boot.sh's own decisions, outside a boot (a private mount namespace with tmpfs over
// /run and /var/lib): what it does when ext cannot run from any image, the bless step without a
// merged /usr/bin/ext, and its arguments. Selecting with the ext of an image, and the fallback to
// the last good image, are shown in a real boot (test/integration/boot-real.test.ts).

const SCRIPT = `${REPO}/templates/ext-boot.sh`;
let ns: Namespace;
beforeAll(() => {
  ns = openNamespace();
});
afterAll(() => ns?.close());

const boot = (...args: string[]) => ns.run(["sh", SCRIPT, ...args]);

describe("/etc/ext/boot.sh", () => {
  it("no state: nothing to do", () => {
    const r = boot("boot", "select");
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("ext-boot: ext has no state on this system\n");
  });

  it("ext runs from neither the linked image nor the last good one: this boot without the extension, the unit fails, nothing persistent changes", () => {
    const setup = ns.run(["sh", "-euc", `
      mkdir -p /var/lib/ext/images /var/lib/extensions
      head -c 65536 /dev/urandom > /var/lib/ext/images/${"a".repeat(64)}.raw
      ln /var/lib/ext/images/${"a".repeat(64)}.raw /var/lib/extensions/tools.raw
      head -c 65536 /dev/urandom > /var/lib/ext/images/${"b".repeat(64)}.raw
      echo ${"b".repeat(64)} > /var/lib/ext/boot.fallback
    `]);
    expect(setup.status, setup.stderr).toBe(0);
    const before = ns.run(["sh", "-c", "ls -la /var/lib/ext /var/lib/extensions; sha256sum /var/lib/extensions/tools.raw"]).stdout;
    const r = boot("--name", "tools", "boot", "select");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ext-boot: ext could not run from the linked image \/var\/lib\/extensions\/tools\.raw$/m);
    expect(r.stderr).toMatch(/^ext-boot: ext could not run from the last good image b{64} either$/m);
    expect(r.stderr).toMatch(/^ext-boot: booting without the tools extension this time/m);
    // The mask: an empty directory of the extension's name in /run/extensions (first found wins).
    expect(ns.run(["test", "-d", "/run/extensions/tools"]).status).toBe(0);
    expect(ns.run(["sh", "-c", "ls -A /run/extensions/tools | wc -l"]).stdout.trim()).toBe("0");
    expect(ns.run(["sh", "-c", "ls -la /var/lib/ext /var/lib/extensions; sha256sum /var/lib/extensions/tools.raw"]).stdout).toBe(before);
    // The private mounts went with their namespace: nothing left mounted, no mount point left over.
    expect(ns.run(["sh", "-c", "grep -c ext-boot-select /proc/self/mountinfo"]).stdout.trim()).toBe("0");
    expect(ns.run(["test", "-e", "/run/ext-boot-select"]).status).not.toBe(0);
  });

  it("a fallback that is not a sha256, or the linked image itself, is not tried twice", () => {
    ns.run(["sh", "-c", `echo 'x; reboot' > /var/lib/ext/boot.fallback; rm -rf /run/extensions`]);
    const bad = boot("--name", "tools", "boot", "select");
    expect(bad.status).toBe(1);
    expect(bad.stderr).not.toMatch(/last good image/);
    ns.run(["sh", "-c", `echo ${"a".repeat(64)} > /var/lib/ext/boot.fallback`]);
    const same = boot("--name", "tools", "boot", "select");
    expect(same.status).toBe(1);
    expect(same.stderr).not.toMatch(/last good image/);
  });

  it("bless with no ext merged: nothing to bless, not a failure; a wrong call: usage", () => {
    const bless = boot("boot", "bless");
    expect(bless.status).toBe(0);
    expect(bless.stderr).toBe("ext-boot: no ext is merged this boot: nothing to bless\n");
    const wrong = boot("boot", "reboot");
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/usage: boot\.sh \[--name NAME\] boot select\|bless/);
  });
});
