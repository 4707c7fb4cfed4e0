import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { extEnv, openNamespace, EXT, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { machine, must, Publisher, sh, sha256 } from "../helpers/fleet.js";
import { ensureBuilt } from "../helpers/build.js";
import { expectValid } from "../unit/cli/schemas.js";

// Issue 18: signed verity DDIs. `ext publish --ddi` wraps ext's reproducible EROFS image with
// systemd-repart (real, as nobody, twice: the same bytes) into root + root-verity + root-verity-sig;
// a machine subscribed with the certificate checks what dm-verity would (veritysetup verify on files,
// openssl over the signed root hash) and refuses a changed data partition, hash partition or signature.
// This kernel has no device-mapper: systemd-sysext cannot set up dm-verity here, so the merges below
// run with EXT_SYSEXT_IMAGE_POLICY=root=unprotected+absent (the DDI's root partition merged without
// verity), and one test shows what a merge with verity does here. On Debian 12 (systemd-repart 252)
// `--ddi` is refused with a message naming what is missing: that is what runs there.

function repartVersion(): number {
  const r = spawnSync("systemd-repart", ["--version"], { encoding: "utf8" });
  return Number(/^systemd (\d+)/.exec(r.stdout ?? "")?.[1] ?? 0);
}
const REPART = repartVersion();
const CAN_DDI = REPART >= 254;
const UNPROTECTED = { EXT_SYSEXT_IMAGE_POLICY: "root=unprotected+absent:usr=unprotected+absent" };
// systemd-sysext 257 (trixie) then ignores the verity partitions and merges the root partition;
// 262 (sid) sets up dm-verity whatever the policy says (seen: "Found for designator root:
// verity+signed+…", then "Cannot initialize device-mapper"), so there the merge cannot run here.
const SYSEXT = Number(/^systemd (\d+)/.exec(spawnSync("systemd-sysext", ["--version"], { encoding: "utf8" }).stdout ?? "")?.[1] ?? 0);
const MERGES_UNPROTECTED = SYSEXT > 0 && SYSEXT < 262;

let dir: string;
let srv: string;
let pub: Publisher;
let base: string;
let ns: Namespace;
let machineView: ReturnType<typeof machine>;

const gpg = (args: string[]) => pub.gpg(args);
const hostExt = (args: string[]) => pub.ext(args);
const manifest = (name: string, packages: string[]) => pub.manifest(name, packages);
const toolsJson = (packages: string[]) => pub.toolsJson(packages);

/** Publishes `packages` as a signed DDI (verity key `cert`) into srv/CHANNEL, SHA256SUMS signed by the fleet's gpg key. */
function publishDdi(channel: string, version: string, packages: string[], cert = "fleet"): { sha256: string; erofsSha256: string } {
  const r = must(hostExt(["publish", manifest(`${channel}-${version}`, packages), version, "-o", join(srv, channel), "--sign-key", "fleet@example.org",
    "--ddi", "--verity-key", join(dir, `${cert}.key`), "--verity-cert", join(dir, `${cert}.crt`), "--json"]), `publish --ddi ${channel} ${version}`);
  const doc = JSON.parse(r.stdout) as { sha256: string; erofsSha256: string; format: string };
  expectValid("publish", doc);
  expect(doc.format).toBe("ddi");
  return doc;
}

/** ext in the machine's namespace; merges as this kernel allows (see the top). */
function mx(args: string[], env: Record<string, string> = UNPROTECTED): RunOutput {
  return ns.ext(args, { env });
}

const ok = (args: string[]): RunOutput => machineView.ok(args);
const json = <T>(args: string[]): T => machineView.json<T>(args);

/** What a machine's administrator could see change. */
const snapshot = () => machineView.snapshot();

/** The partitions of a disk image (bytes), read from its GPT by a few lines of Python: a reading of
 *  the table independent of ext's own (src/image/ddi.ts). */
function partitions(file: string): { type: string; start: number; size: number }[] {
  const py = [
    "import json, struct, sys, uuid",
    "f = open(sys.argv[1], 'rb'); f.seek(512); h = f.read(92)",
    "assert h[:8] == b'EFI PART'",
    "lba, n, size = struct.unpack_from('<QII', h, 72)",
    "f.seek(lba * 512); t = f.read(n * size); out = []",
    "for i in range(n):",
    "  e = t[i * size:(i + 1) * size]",
    "  if e[:16] == bytes(16): continue",
    "  first, last = struct.unpack_from('<QQ', e, 32)",
    "  out.append({'type': str(uuid.UUID(bytes_le=e[:16])), 'start': first * 512, 'size': (last - first + 1) * 512})",
    "print(json.dumps(out))",
  ].join("\n");
  return JSON.parse(must(sh(["python3", "-c", py, file]), "read the GPT").stdout) as { type: string; start: number; size: number }[];
}

const ROOT = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
const ROOT_VERITY = "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5";

function flipAt(file: string, at: number): void {
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(file, bytes);
}

/** After changing an image on the server: SHA256SUMS and its signature made again, by the fleet's key,
 *  so that only the verity checks stand between the changed image and the machine. */
function resign(channel: string): void {
  const d = join(srv, channel);
  const raws = spawnSync("sh", ["-c", "ls *.raw"], { cwd: d, encoding: "utf8" }).stdout.trim().split("\n");
  writeFileSync(join(d, "SHA256SUMS"), raws.map((f) => `${sha256(join(d, f))}  ${f}\n`).join(""));
  gpg(["--yes", "--local-user", "fleet@example.org", "--detach-sign", "--output", join(d, "SHA256SUMS.gpg"), join(d, "SHA256SUMS")]);
}

function subscribe(channel: string, cert: string | null = "fleet"): void {
  expectValid("subscribe", json(["subscribe", `${base}/${channel}`, "--key", join(dir, "fleet.asc"), ...(cert ? ["--verity-cert", join(dir, `${cert}.crt`)] : [])]));
}

beforeAll(async () => {
  ensureBuilt();
  pub = new Publisher("/tmp/ext-ddi-");
  ({ dir, srv } = pub);
  // Verity keys: RSA (PKCS#1 v1.5 signatures carry no randomness and, without signed attributes, no time).
  for (const who of ["fleet", "intruder"]) {
    must(sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, `${who}.key`), "-out", join(dir, `${who}.crt`), "-days", "3650", "-subj", `/CN=${who} verity`]), "openssl req");
    chmodSync(join(dir, `${who}.key`), 0o644); // nobody signs with it below
  }
  base = await pub.serve();
  ns = openNamespace();
  machineView = machine(ns, UNPROTECTED);
  must(ns.run(["mount", "-t", "tmpfs", "tmpfs", "/etc/systemd"]), "tmpfs over /etc/systemd");
}, 120_000);

afterAll(() => {
  ns?.close();
  pub?.close();
});

describe.runIf(!CAN_DDI)(`ext publish --ddi with systemd-repart ${REPART || "absent"}`, () => {
  it("is refused before anything is built, naming what is missing", () => {
    const out = join(dir, "out-old");
    const r = hostExt(["publish", manifest("old", ["hello"]), "1", "-o", out, "--ddi", "--verity-key", join(dir, "fleet.key"), "--verity-cert", join(dir, "fleet.crt")]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(REPART ? new RegExp(`--ddi needs systemd-repart ≥ 254 .*this host has systemd-repart ${REPART}`) : /--ddi needs systemd-repart, which is not on this host/);
    expect(r.stderr).toMatch(/without --ddi ext publishes plain EROFS images/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(out, "ext_1.raw"))).toBe(false);
  });
});

describe("ext publish --ddi: the options", () => {
  it("needs both the key and the certificate, and they need --ddi", () => {
    const m = manifest("opts", ["hello"]);
    const a = hostExt(["publish", m, "1", "-o", join(dir, "o"), "--ddi", "--verity-key", join(dir, "fleet.key")]);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/--ddi needs --verity-key KEY\.pem and --verity-cert CERT\.pem/);
    const b = hostExt(["publish", m, "1", "-o", join(dir, "o"), "--verity-key", join(dir, "fleet.key"), "--verity-cert", join(dir, "fleet.crt")]);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/they need --ddi/);
  });
});

describe.runIf(CAN_DDI)(`signed verity DDIs (systemd-repart ${REPART})`, () => {
  it("ext publish --ddi writes root, root-verity and root-verity-sig, signed; the same manifest and lock give the same bytes, as nobody", () => {
    const lockDir = join(dir, "locked");
    mkdirSync(lockDir);
    writeFileSync(join(lockDir, "tools.json"), toolsJson(["hello"]));
    const scratch = openNamespace();
    try {
      must(scratch.ext(["apply", join(lockDir, "tools.json")]), "apply");
    } finally {
      scratch.close();
    }
    const builder = openNamespace();
    try {
      must(builder.run(["sh", "-c", "mkdir -p /var/lib/nobody /var/lib/out-a /var/lib/out-b && chown 65534:65534 /var/lib/nobody /var/lib/out-a /var/lib/out-b"]), "homes");
      const [a, b] = ["a", "b"].map((d) => {
        const out = `/var/lib/out-${d}`;
        const r = builder.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/var/lib/nobody", "node", EXT, "publish", join(lockDir, "tools.json"), "7",
          "--output", out, "--ddi", "--verity-key", join(dir, "fleet.key"), "--verity-cert", join(dir, "fleet.crt"), "--json"], { env: extEnv() });
        must(r, "publish --ddi as nobody");
        const doc = JSON.parse(r.stdout) as { sha256: string; erofsSha256: string; format: string };
        expectValid("publish", doc);
        return { doc, file: `/proc/${builder.pid}/root${out}/ext_7.raw` };
      });
      expect(a!.doc.format).toBe("ddi");
      expect(a!.doc.sha256).not.toBe(a!.doc.erofsSha256);
      expect(sha256(a!.file)).toBe(a!.doc.sha256);
      expect(sha256(b!.file)).toBe(a!.doc.sha256);
      // systemd's own reading of it (loop device, as root): an erofs root whose verity is signed.
      const dissect = JSON.parse(must(builder.run(["systemd-dissect", "--json=short", `/var/lib/out-a/ext_7.raw`]), "systemd-dissect").stdout) as { mounts: { designator: string; fstype: string | null; verity: string | null }[] };
      expect(dissect.mounts.map((m) => m.designator).sort()).toEqual(["root", "root-verity", "root-verity-sig"]);
      expect(dissect.mounts.find((m) => m.designator === "root")).toMatchObject({ fstype: "erofs", verity: "signed" });
      // The root partition is ext's EROFS image, byte for byte.
      const root = partitions(a!.file).find((p) => p.type === ROOT)!;
      const data = readFileSync(a!.file).subarray(root.start, root.start + root.size);
      expect(createHash("sha256").update(data).digest("hex")).toBe(a!.doc.erofsSha256);
    } finally {
      builder.close();
    }
  }, 600_000);

  it.runIf(MERGES_UNPROTECTED)("a subscribed machine checks the signature and the hash tree, imports the DDI as it is, and its tools run from /usr/bin", () => {
    const published = publishDdi("main", "1", ["hello"]);
    subscribe("main");
    expect(ns.read("/var/lib/ext/subscription/verity.crt")).toBe(readFileSync(join(dir, "fleet.crt"), "utf8"));
    const r = ok(["pull"]);
    expect(r.stdout).toMatch(/generation 1 is active \(\+hello 2\.10\)/);
    // The file systemd-sysext merges is the signed DDI itself (dm-verity would check it at merge).
    expect(ns.run(["sha256sum", "/var/lib/extensions/ext.raw"]).stdout.split(" ")[0]).toBe(published.sha256);
    expect(ns.run(["/usr/bin/hello"], { hideNix: true }).stdout).toBe("Hello, world!\n");
    expect(json<{ generation: number }>(["status"]).generation).toBe(1);
    // A second version, then a rollback: the DDI generations behave like any other.
    publishDdi("main", "2", ["hello", "jq"]);
    expect(ok(["pull"]).stdout).toMatch(/generation 2 is active \(\+jq 1\.6\)/);
    expect(ns.run(["sh", "-c", "echo '{\"a\":1}' | /usr/bin/jq -c .a"], { hideNix: true }).stdout).toBe("1\n");
    ok(["rollback"]);
    expect(ns.run(["test", "-e", "/usr/bin/jq"]).status).not.toBe(0);
    ok(["rollback", "--to", "2"]);
  }, 600_000);

  it.runIf(MERGES_UNPROTECTED)("without device-mapper, a merge with verity (no image policy) fails, and so does the undo's: the old overlay stays and the next command finishes the undo", () => {
    const before = snapshot();
    // A refresh as a machine with dm-verity would run it (no image policy given): the undo's refresh too.
    const r = ns.ext(["rollback"]);
    expect(r.status).toBe(7);
    expect(r.stderr).toMatch(/systemd-sysext refused to merge the extensions; and rolling back failed too/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // systemd-sysext keeps the old overlay when a refresh fails: generation 2's tools still run.
    expect(ns.run(["sh", "-c", "echo '{\"a\":1}' | /usr/bin/jq -c .a"], { hideNix: true }).stdout).toBe("1\n");
    // The next command (merging as this kernel allows) finishes the undo: back to exactly what was.
    ok(["status"]);
    expect(snapshot()).toEqual(before);
    // A local add on top of a DDI generation: never appended onto the DDI (a GPT disk, not EROFS),
    // packed in full into a plain image whose tools run.
    expect(ok(["add", "greet"]).stdout).toMatch(/is active \(\+greet/);
    const current = json<{ generation: number }>(["status"]).generation;
    const record = JSON.parse(ns.read(`/var/lib/ext/generations/${current}.json`) ?? "{}") as { image: { sha256: string; appended?: number } };
    expect(record.image.appended).toBeUndefined();
    expect(ns.run(["sh", "-c", `head -c 1028 /var/lib/ext/images/${record.image.sha256}.raw | tail -c 4 | od -An -tx1`]).stdout.trim()).toBe("e2 e1 f5 e0");
    expect(ns.run(["/usr/bin/greet"], { hideNix: true }).status).toBe(0);
  });

  it.runIf(!MERGES_UNPROTECTED)(`systemd-sysext ${SYSEXT} passes the checks, then cannot merge without device-mapper: ext undoes the import`, () => {
    publishDdi("main", "1", ["hello"]);
    subscribe("main");
    // The first activation creates the directory, and an undo leaves it (empty): not what is compared.
    must(ns.run(["mkdir", "-p", "/var/lib/extensions"]), "mkdir");
    const before = snapshot();
    const r = mx(["pull"]);
    expect(r.status).toBe(7);
    // The signature and the hash tree were checked (import), the EROFS partition verified, then the merge failed.
    expect(r.stderr).toMatch(/\] verifying\n[^]*activating: failed/);
    expect(r.stderr).toMatch(/systemd-sysext refused to merge the extensions\n[^]*Cannot initialize device-mapper/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(snapshot()).toEqual(before);
  });

  describe("refused, and nothing reaches /var/lib/extensions", () => {
    function refused(channel: string, cert: string | null, message: RegExp): void {
      subscribe(channel, cert);
      const before = snapshot();
      const r = mx(["pull"]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(snapshot()).toEqual(before);
      // A refused download is not kept: the next check fetches it again instead of finding it there.
      expect(ns.run(["ls", "-a", "/var/lib/ext/incoming"]).stdout).not.toMatch(/ext_9/);
      expect(json<{ subscription: { lastCheck: { result: string } } }>(["status"]).subscription.lastCheck.result).toBe("failed");
    }

    it("a changed byte in the data partition", () => {
      publishDdi("data", "9", ["hello", "jq"]);
      const f = join(srv, "data/ext_9.raw");
      const root = partitions(f).find((p) => p.type === ROOT)!;
      flipAt(f, root.start + Math.floor(root.size * 0.6));
      resign("data");
      refused("data", "fleet", /the data of .*ext_9\.raw does not match its verity hash tree and signed root hash \(veritysetup verify\): refused/);
    });

    it("a changed byte in the hash partition", () => {
      publishDdi("hash", "9", ["hello", "jq"]);
      const f = join(srv, "hash/ext_9.raw");
      const hash = partitions(f).find((p) => p.type === ROOT_VERITY)!;
      flipAt(f, hash.start + 4096 + 17);
      resign("hash");
      refused("hash", "fleet", /does not match its verity hash tree and signed root hash/);
    });

    it("a DDI signed by another certificate", () => {
      publishDdi("intruder", "9", ["hello", "jq"], "intruder");
      refused("intruder", "fleet", /the verity signature of .*ext_9\.raw does not verify with the subscription's certificate: refused/);
    });

    it("a plain EROFS image where the subscription has a certificate", () => {
      must(hostExt(["publish", manifest("plain-9", ["hello", "jq"]), "9", "-o", join(srv, "plain"), "--sign-key", "fleet@example.org"]), "publish plain");
      refused("plain", "fleet", /is a plain EROFS image, and this subscription takes only signed verity DDIs/);
    });

    it("a DDI where the subscription has no certificate", () => {
      publishDdi("nocert", "9", ["hello", "jq"]);
      refused("nocert", null, /is a verity DDI, and this subscription has no certificate to check its signature: refused/);
      expect(ns.run(["test", "-e", "/var/lib/ext/subscription/verity.crt"]).status).not.toBe(0);
    });
  });

  it("ext subscribe --require-signed writes the drop-in whose policy systemd-sysext applies: a plain image is refused, merged without it", () => {
    const needs = mx(["subscribe", `${base}/main`, "--key", join(dir, "fleet.asc"), "--require-signed"]);
    expect(needs.status).toBe(2);
    expect(needs.stderr).toMatch(/--require-signed needs --verity-cert/);
    ok(["subscribe", `${base}/main`, "--key", join(dir, "fleet.asc"), "--verity-cert", join(dir, "fleet.crt"), "--require-signed"]);
    const dropIn = ns.read("/etc/systemd/system/systemd-sysext.service.d/50-ext-require-signed.conf")!;
    const policy = /^ExecStart=systemd-sysext refresh --image-policy=(\S+)$/m.exec(dropIn)?.[1];
    expect(policy).toBe("root=signed+absent:usr=signed+absent");
    expect(dropIn).toMatch(/^\[Service\]\nExecStart=\n/m);
    must(sh(["systemd-analyze", "image-policy", policy!]), "systemd-analyze image-policy");
    // systemd-sysext with that policy, in a namespace of its own, on the plain image published above.
    const other = openNamespace();
    try {
      must(other.run(["sh", "-c", `mkdir -p /run/extensions && cp ${join(srv, "plain/ext_9.raw")} /run/extensions/ext.raw`]), "copy");
      const refusedMerge = other.run(["systemd-sysext", "merge", `--image-policy=${policy}`]);
      expect(refusedMerge.status).not.toBe(0);
      expect(refusedMerge.stderr).toMatch(/does not match image policy/i);
      expect(other.run(["test", "-e", "/usr/bin/jq"]).status).not.toBe(0);
      must(other.run(["systemd-sysext", "merge"]), "merge without the policy");
      expect(other.run(["sh", "-c", "echo '{\"a\":1}' | /usr/bin/jq -c .a"], { hideNix: true }).stdout).toBe("1\n");
    } finally {
      other.close();
    }
    // Subscribing again without it removes it; unsubscribe would too.
    ok(["subscribe", `${base}/main`, "--key", join(dir, "fleet.asc"), "--verity-cert", join(dir, "fleet.crt")]);
    expect(ns.read("/etc/systemd/system/systemd-sysext.service.d/50-ext-require-signed.conf")).toBeUndefined();
  });

  it("ext subscribe refuses a private key given as the certificate", () => {
    const r = mx(["subscribe", `${base}/main`, "--key", join(dir, "fleet.asc"), "--verity-cert", join(dir, "fleet.key")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/holds a private key: give the certificate/);
  });
});
