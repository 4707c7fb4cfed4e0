import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, REPO, openNamespace, type Namespace } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 16.1: SELinux labels in the image, from a real policy: Debian's selinux-policy-default,
// compiled in a tree of its own (scripts/selinux-policy.sh). The labels are read back from the
// mounted image with getfattr — they are stored even on a kernel without SELinux.

const FILE_CONTEXTS = execFileSync("bash", [`${REPO}/scripts/selinux-policy.sh`], { encoding: "utf8" }).trim();

let ns: Namespace;
let work: string;
beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
  // Below /var/lib (the namespace's tmpfs, mode 755), not /tmp: the images are mounted from there.
  work = "/var/lib/ext-selinux-test";
  ns.run(["mkdir", "-p", work]);
});
afterAll(() => ns?.close());

/** Writes a file as the namespace sees it. */
function write(path: string, text: string): void {
  writeFileSync(`/proc/${ns.pid}/root${path}`, text);
}

function ext(args: string[]) {
  const r = ns.ext(args);
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
  return r;
}

/** path → security.selinux of every entry of the image, read from the mounted image. */
function labels(image: string): Map<string, string> {
  const mnt = `${image}.mnt`;
  const r = ns.run(["sh", "-c", `mkdir -p ${mnt} && mount -o loop,ro ${image} ${mnt} && getfattr -R -h -n security.selinux --absolute-names ${mnt}; s=$?; umount ${mnt}; exit $s`]);
  // getfattr exits 1 when some entry has no label (an unlabelled image: every entry).
  const unexpected = r.stderr.split("\n").filter((l) => l.trim() !== "" && !/security\.selinux: No such attribute$/.test(l));
  expect(unexpected, r.stderr).toEqual([]);
  const out = new Map<string, string>();
  let file = "";
  for (const line of r.stdout.split("\n")) {
    const f = /^# file: (.*)$/.exec(line);
    if (f) file = f[1]!.slice(mnt.length) || "/";
    const v = /^security\.selinux="(.*)"$/.exec(line);
    if (v) out.set(file, v[1]!);
  }
  return out;
}

/** sha256 of a file, computed where it is (piping a 6 MiB image through spawnSync's 1 MiB buffer
 *  cut it short at a point that varied from run to run). */
function sha(path: string): string {
  const r = ns.run(["sha256sum", path]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split(" ")[0]!;
}

describe("SELinux labels at build time", () => {
  it("every file gets the policy's label for the system path it stands for; the same inputs give the same bytes", () => {
    ext(["build", "ripgrep", "greet", "--selinux-contexts", FILE_CONTEXTS, "-o", `${work}/a.raw`]);
    ext(["build", "ripgrep", "greet", "--selinux-contexts", FILE_CONTEXTS, "-o", `${work}/b.raw`]);
    ext(["build", "ripgrep", "greet", "--selinux-contexts", "none", "-o", `${work}/plain.raw`]);
    expect(sha(`${work}/a.raw`)).toBe(sha(`${work}/b.raw`));
    expect(sha(`${work}/a.raw`)).not.toBe(sha(`${work}/plain.raw`));

    const l = labels(`${work}/a.raw`);
    const find = (re: RegExp) => [...l.entries()].filter(([p]) => re.test(p));
    const rg = find(/^\/usr\/store\/[^/]+-ripgrep-[^/]+\/bin\/rg$/);
    expect(rg).toHaveLength(1);
    expect(rg[0]![1]).toBe("system_u:object_r:bin_t:s0");
    const libs = find(/^\/usr\/store\/[^/]+-pcre2-[^/]+\/lib\/libpcre2-8\.so/);
    expect(libs.length).toBeGreaterThan(0);
    for (const [, c] of libs) expect(c).toBe("system_u:object_r:lib_t:s0");
    const man = find(/^\/usr\/store\/[^/]+-greet-[^/]+\/share\/man\/man1\/greet\.1\.gz$/);
    expect(man.map(([, c]) => c)).toEqual(["system_u:object_r:man_t:s0"]);
    expect(l.get("/usr/store")).toBe("system_u:object_r:usr_t:s0");
    // The farm's links and the release file keep the policy's own labels.
    expect(l.get("/usr/bin/rg")).toBe("system_u:object_r:bin_t:s0");
    expect(l.get("/usr/share/man/man1/greet.1.gz")).toBe("system_u:object_r:man_t:s0");
    expect(l.get("/usr/lib/extension-release.d/extension-release.ext")).toMatch(/^system_u:object_r:\w+_t:s0$/);
    // Nothing unlabelled: every entry has a label, none the policy's fallbacks.
    const entries = ns.run(["sh", "-c", `mkdir -p ${work}/m && mount -o loop,ro ${work}/a.raw ${work}/m && (cd ${work}/m && find . | wc -l); umount ${work}/m`]);
    expect(l.size).toBe(Number(entries.stdout.trim()));
    for (const [p, c] of l) expect(c, p).not.toMatch(/default_t|unlabeled_t|file_t/);
  });

  it("auto: a system whose /etc/selinux/config names a policy gets labelled images; --selinux-contexts none does not", () => {
    const root = `${work}/root`;
    const policy = join(root, "etc/selinux/default/contexts/files");
    expect(ns.run(["mkdir", "-p", policy, `${root}/usr/lib`, `${root}/var/lib/extensions`]).status).toBe(0);
    expect(ns.run(["cp", FILE_CONTEXTS, `${policy}/file_contexts`]).status).toBe(0);
    expect(ns.run(["sh", "-c", `printf 'SELINUX=enforcing\\nSELINUXTYPE=default\\n' > ${root}/etc/selinux/config; printf 'ID=test\\n' > ${root}/usr/lib/os-release`]).status).toBe(0);
    ext(["--root", root, "add", "jq"]);
    const gen = JSON.parse(ns.read(`${root}/var/lib/ext/generations/1.json`) ?? "{}") as { image: { sha256: string } };
    const l = labels(`${root}/var/lib/ext/images/${gen.image.sha256}.raw`);
    expect([...l.entries()].find(([p]) => /-jq-1\.6\/bin\/jq$/.test(p))?.[1]).toBe("system_u:object_r:bin_t:s0");
    // Unlabelled, the same set is another image (the labels are part of its key), with no labels at all.
    ext(["--root", root, "--selinux-contexts", "none", "remove", "jq"]);
    ext(["--root", root, "--selinux-contexts", "none", "add", "jq"]);
    const plain = JSON.parse(ns.read(`${root}/var/lib/ext/generations/3.json`) ?? "{}") as { image: { sha256: string } };
    expect(plain.image.sha256).not.toBe(gen.image.sha256);
    expect(labels(`${root}/var/lib/ext/images/${plain.image.sha256}.raw`).size).toBe(0);
  });

  it("tools.json's selinuxContexts names the file_contexts relative to itself: the same bytes as the option; a contradiction or a missing file is refused, naming the file", () => {
    const dir = `${work}/set`;
    expect(ns.run(["mkdir", "-p", `${dir}/policy`]).status).toBe(0);
    expect(ns.run(["cp", FILE_CONTEXTS, `${dir}/policy/file_contexts`]).status).toBe(0);
    const manifest = (contexts: string) => JSON.stringify({ version: 1, source: FIXTURES, selinuxContexts: contexts, packages: { ripgrep: {}, greet: {} } });
    write(`${dir}/tools.json`, manifest("policy/file_contexts"));
    ext(["build", "--manifest", `${dir}/tools.json`, "-o", `${work}/m.raw`]);
    ext(["build", "ripgrep", "greet", "--selinux-contexts", `${dir}/policy/file_contexts`, "-o", `${work}/o.raw`]);
    expect(sha(`${work}/m.raw`)).toBe(sha(`${work}/o.raw`));
    expect([...labels(`${work}/m.raw`).entries()].find(([p]) => /-ripgrep-[^/]+\/bin\/rg$/.test(p))?.[1]).toBe("system_u:object_r:bin_t:s0");

    const typed = ns.ext(["build", "--manifest", `${dir}/tools.json`, "--selinux-contexts", "none", "-o", `${work}/x.raw`]);
    expect(typed.status).toBe(2);
    expect(typed.stderr).toMatch(/--selinux-contexts none contradicts .*tools\.json, which says "selinuxContexts": "policy\/file_contexts"/);

    write(`${dir}/tools.json`, manifest("policy/missing"));
    const missing = ns.ext(["build", "--manifest", `${dir}/tools.json`, "-o", `${work}/x.raw`]);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/policy\/missing \(named by "selinuxContexts" of .*tools\.json\) cannot be read/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    expect(ns.run(["test", "-e", `${work}/x.raw`]).status).not.toBe(0);

    write(`${dir}/tools.json`, manifest("none"));
    ext(["build", "--manifest", `${dir}/tools.json`, "-o", `${work}/n.raw`]);
    expect(labels(`${work}/n.raw`).size).toBe(0);
  });

  it("ext doctor reads the active image's labels back and compares them with the host's policy", () => {
    const root = `${work}/doctor-root`;
    const policyDir = join(root, "etc/selinux/default/contexts/files");
    expect(ns.run(["mkdir", "-p", policyDir, `${root}/usr/lib`, `${root}/var/lib/extensions`]).status).toBe(0);
    expect(ns.run(["cp", FILE_CONTEXTS, `${policyDir}/file_contexts`]).status).toBe(0);
    expect(ns.run(["sh", "-c", `printf 'SELINUX=enforcing\\nSELINUXTYPE=default\\n' > ${root}/etc/selinux/config; printf 'ID=test\\n' > ${root}/usr/lib/os-release`]).status).toBe(0);
    const finding = () => {
      const r = ns.ext(["--root", root, "doctor", "--json"]);
      const doc = JSON.parse(r.stdout) as { findings: { check: string; status: string; message: string; details?: Record<string, unknown> }[] };
      return doc.findings.find((f) => f.check === "selinux-image")!;
    };
    ext(["--root", root, "add", "jq"]);
    const good = finding();
    expect(good.status, good.message).toBe("ok");
    expect(good.message).toMatch(/^the active image \(generation 1\): all \d+ entries carry the labels .*file_contexts gives them$/);
    expect(Number(good.details?.["entries"])).toBeGreaterThan(10);

    // The policy changes: programs are now labelled otherwise. The image is not: a warning that says which.
    ns.run(["sh", "-c", `printf '\\n/usr/bin(/.*)?\\tsystem_u:object_r:shell_exec_t:s0\\n' >> ${policyDir}/file_contexts`]);
    const changed = finding();
    expect(changed.status).toBe("warning");
    expect(changed.message).toMatch(/entries carry labels this host's policy does not give them \(e\.g\. \/usr\/bin: system_u:object_r:bin_t:s0, the policy says system_u:object_r:shell_exec_t:s0\)/);

    // An unlabelled image on an SELinux host is an error.
    ns.run(["cp", FILE_CONTEXTS, `${policyDir}/file_contexts`]);
    ext(["--root", root, "--selinux-contexts", "none", "remove", "jq"]);
    ext(["--root", root, "--selinux-contexts", "none", "add", "jq"]);
    const bare = finding();
    expect(bare.status).toBe("error");
    expect(bare.message).toMatch(/generation 3\): \d+ of \d+ entries have no SELinux label/);

    // The same image on a host without SELinux: labels or none, nothing to fix.
    ns.run(["sh", "-c", `printf 'SELINUX=disabled\\n' > ${root}/etc/selinux/config`]);
    expect(finding()).toMatchObject({ status: "ok", message: expect.stringMatching(/carries no SELinux labels, as this host \(no SELinux\) needs/) });
    ext(["--root", root, "rollback", "--to", "1"]);
    expect(finding()).toMatchObject({ status: "info", message: expect.stringMatching(/carries SELinux labels on \d+ of \d+ entries .*ignores them/) });
  });
});
