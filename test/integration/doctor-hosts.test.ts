import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { openNamespace, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";
import { layout } from "../../src/base/layout.js";
import { realHost } from "../../src/doctor/index.js";
import { checkOsUpgrades } from "../../src/doctor/image-hosts.js";

// ext doctor's checks for image-based hosts that need a real file system or a real image
// (src/doctor/image-hosts.ts): an immutable / (chattr +i, as ostree sets it) on a real ext4 — tmpfs
// has no such flag — made from a loop image inside a private mount namespace; and what the active
// image's ID=_any means, read out of the image that `ext add` made.

const TREE = "/run/ext-immutable/root";
let ns: Namespace;
beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
  const r = ns.run(["sh", "-euc", `
    mkdir -p /run/ext-immutable/root
    truncate -s 32M /run/ext-immutable/fs.img
    mkfs.ext4 -q -F /run/ext-immutable/fs.img
    mount -o loop /run/ext-immutable/fs.img ${TREE}
    mkdir ${TREE}/usr ${TREE}/etc ${TREE}/var
  `]);
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => {
  ns?.run(["sh", "-c", `chattr -i ${TREE}; umount ${TREE}`]);
  ns?.close();
});

interface Finding { check: string; status: string; message: string; details?: Record<string, unknown> }
const findings = (args: string[]): Finding[] => (JSON.parse(ns.ext([...args, "doctor", "--json"]).stdout) as { findings: Finding[] }).findings;

describe("an immutable / (chattr +i on a real ext4)", () => {
  it("says /nix cannot be made and that ext's private store is used; without the flag, ok", () => {
    expect(ns.run(["chattr", "+i", TREE]).status).toBe(0);
    // The flag is real: not even root can make /nix there.
    const mk = ns.run(["mkdir", `${TREE}/nix`]);
    expect(mk.status).not.toBe(0);
    expect(mk.stderr).toMatch(/Operation not permitted/);
    // With ext's private store (as ext on that system would choose), and with this machine's system store.
    const f = findings(["--root", TREE, "--store", `${TREE}/var/lib/ext/nix`]).find((x) => x.check === "root-immutable");
    expect(f).toMatchObject({ status: "info" });
    expect(f!.message).toBe(`${TREE} is immutable (chattr +i, as ostree sets it): /nix cannot be created, not even by root, so there is no system Nix store; ext keeps its packages in its private store ${TREE}/var/lib/ext/nix/nix/store`);
    expect(f!.details?.["attributes"]).toMatch(/i/);
    const system = findings(["--root", TREE, "--store", "system"]).find((x) => x.check === "root-immutable");
    expect(system).toMatchObject({ status: "info" });
    expect(system!.message).toMatch(/; ext run on that system keeps its packages in its private store \(--store auto\)$/);

    expect(ns.run(["chattr", "-i", TREE]).status).toBe(0);
    const after = findings(["--root", TREE]).find((x) => x.check === "root-immutable");
    expect(after).toMatchObject({ status: "ok", message: `${TREE} is not immutable: /nix can be made there` });
  });
});

describe("ID=_any and OS upgrades", () => {
  it("the active image's extension-release, read from the image: ID=_any, this machine's architecture", () => {
    const add = ns.ext(["add", "jq"]);
    expect(add.status, add.stderr).toBe(0);
    const f = findings([]).find((x) => x.check === "os-upgrades");
    expect(f).toMatchObject({ status: "info", details: { extensionRelease: { ID: "_any", ARCHITECTURE: "x86-64" } } });
    expect(f!.message).toMatch(/^ext's image declares ID=_any \(ARCHITECTURE=x86-64\): systemd-sysext merges it on .* and after any OS upgrade/);
  });

  it("an image for another architecture is an error (the same image, seen from an arm64 machine)", async () => {
    const [f] = await checkOsUpgrades({
      layout: layout(`/proc/${ns.pid}/root`),
      extensionName: "ext",
      compression: "lz4",
      nix: { store: { root: "/" }, system: "aarch64-linux" },
      templatesDir: "/templates",
      host: realHost,
      architecture: "arm64",
    });
    expect(f).toMatchObject({ check: "os-upgrades", status: "error" });
    expect(f!.message).toBe("the active image is for ARCHITECTURE=x86-64, this machine is arm64: systemd-sysext does not merge it");
  });
});
