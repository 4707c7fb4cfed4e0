import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openNamespace, REPO, type Namespace } from "../helpers/namespace.js";
import { Publisher, must } from "../helpers/fleet.js";
import { ensureBuilt } from "../helpers/build.js";
import { Guest, type Probe } from "../helpers/guest.js";

// Issue 18's boot test: a fleet machine of today booted for real. The guest is the host matrix's
// Debian trixie tree (scripts/host-tree.sh: systemd 257 with systemd-sysupdate, node 20, Debian's
// packages), under an overlay so the cached tree is never written, booted by systemd-nspawn with
// systemd as PID 1. ext is this repository's bundle, bound read-only at /opt/ext and run by the
// guest's own node. The publisher is this machine (ext publish, no root) and Python's http.server
// on loopback, which the guest shares (nspawn without --private-network).
//
// In the guest, as an administrator would: `ext setup --boot-tries 1`, `ext subscribe URL --key`,
// then `systemctl start ext-pull.service` — the unit the subscription's timer runs, so
// systemd-sysupdate fetches and verifies, ext makes the generation, systemd-sysext merges it (real
// loop devices). A second version is picked up the same way, rolled back and forth; then two boots
// whose health check fails (a unit RequiredBy=boot-complete.target, as in boot-real.test.ts): the
// first tries the second version, the second goes back to the first version, and the next check of
// the subscription does not bring it back.
//
// Runs on the Debian 12 host only (scripts/test-hosts.sh leaves it out in the trees: it boots a
// trixie tree of its own). Timing on the 2-core CI machine: the trixie tree is the host matrix's
// cached one (a few minutes the first time), each boot ≈ 3–8 s.

const EXT_IN_GUEST = "/opt/ext/bin/ext.js";

let pub: Publisher;
let url: string;
let work: string;
let ns: Namespace | undefined;
let box: Guest;
let bootCount = 0;
const timings: Record<string, number> = {};

function publish(version: string, packages: string[]): void {
  must(pub.ext(["publish", pub.manifest(`main-${version}`, packages), version, "--output", join(pub.srv, "main"), "--sign-key", "fleet@example.org"]), `publish ${version}`);
}

/** What each boot's probe runs (test/helpers/guest.ts has the units): key=value lines the test reads
 *  (the first of each key counts), this boot's steps (/etc/ext-steps.sh), the units' journal. */
const PROBE = `#!/bin/sh
exec > /root/probe.txt 2>&1
ext() { /usr/bin/node ${EXT_IN_GUEST} "$@"; }
# ext's view as one-line JSON: status_jsonSUFFIX=…, generations_jsonSUFFIX=…
record() { echo "status_json$1=$(ext status --json | tr -d '\\n')"; echo "generations_json$1=$(ext generations --json | tr -d '\\n')"; }
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id)"
echo "systemd=$(systemctl --version | head -n 1)"
echo "select=$(systemctl show -P ActiveState ext-boot-select.service)/$(systemctl show -P Result ext-boot-select.service)"
echo "sysext=$(systemctl show -P ActiveState systemd-sysext.service)"
echo "bless=$(systemctl show -P ActiveState ext-boot-bless.service)/$(systemctl show -P Result ext-boot-bless.service)"
echo "failed=$(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\\n' ' ')"
. /etc/ext-steps.sh
echo "--- journal"
journalctl -b --no-pager -o cat -u ext-boot-select.service -u ext-boot-bless.service -u systemd-sysext.service -u ext-pull.service -u ext-upgrade.service
echo "--- end"
`;

/** Shell lines that print what the tools of the merged /usr do (empty where a tool is not there),
 *  as hello, jq and nix_store, each with SUFFIX. */
const tools = (suffix = "") => `
echo "hello${suffix}=$(/usr/bin/hello 2>/dev/null)"
echo "jq${suffix}=$(echo '{"a":1}' | /usr/bin/jq -c .a 2>/dev/null)"
echo "nix_store${suffix}=$(ls /nix/store 2>/dev/null | wc -l)"
`;

/** One boot of the guest running STEPS (shell, with \`ext\` and \`record\` defined) after the bless unit. */
function boot(steps: string, opts: { failHealth: boolean }): Probe {
  box.write("etc/ext-steps.sh", steps);
  const p = box.boot({ failHealth: opts.failHealth, binds: [`--bind-ro=${REPO}:/opt/ext`] });
  timings[`boot${++bootCount}`] = p.seconds;
  return p;
}

function json<T>(p: Probe, key: string): T {
  const text = p.fields[key];
  if (text === undefined || text === "") throw new Error(`no ${key} in the probe:\n${p.raw}`);
  return JSON.parse(text) as T;
}

interface Status {
  generation: number | null;
  subscription: { installedVersion: string | null; newestImported?: { version: string; generation: number }; lastCheck: { result: string; via: string; newest: string } | null };
}
interface Generation { id: number; boot?: { state: string; triesLeft?: number } }

beforeAll(async () => {
  ensureBuilt();
  let t = Date.now();
  const tree = execFileSync("bash", [join(REPO, "scripts/host-tree.sh"), "trixie"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 1_800_000 }).trim();
  timings["tree"] = (Date.now() - t) / 1000;
  t = Date.now();
  pub = new Publisher("/tmp/ext-boot-fleet-");
  publish("1", ["hello"]);
  url = `${await pub.serve()}/main`;
  timings["publish1"] = (Date.now() - t) / 1000;

  work = mkdtempSync("/var/tmp/ext-boot-fleet-");
  const merged = join(work, "merged");
  for (const d of ["upper", "ovl", "merged"]) mkdirSync(join(work, d));
  // The overlay lives in a namespace of the test's: it goes away with it, and the tree stays as it was.
  ns = openNamespace();
  must(ns.run(["mount", "-t", "overlay", "overlay", "-o", `lowerdir=${tree},upperdir=${work}/upper,workdir=${work}/ovl`, merged]), "overlay over the trixie tree");
  box = new Guest({ root: `/proc/${ns.pid}/root${merged}`, dir: merged, work, enter: ["nsenter", `--target=${ns.pid}`, "--mount", "--"], machine: `extfleet${process.pid}` });
  mkdirSync(box.path("opt/ext"), { recursive: true });
  copyFileSync(pub.fleetKey, box.path("root/fleet.asc"));
  box.installTestUnits(PROBE);
}, 2_400_000);

afterAll(() => {
  ns?.close();
  pub?.close();
  if (work && !process.env["EXT_TEST_KEEP"]) rmSync(work, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log(`boot-fleet timings (s): ${JSON.stringify(timings)}`);
});

describe("a trixie machine subscribed to a fleet, booted with systemd as PID 1", () => {
  let first: Probe;

  it("boot 1: setup, subscribe and one run of ext-pull.service install version 1 as generation 1 (systemd-sysupdate), whose hello runs; the timer is armed", () => {
    first = boot(`
ext setup --boot-tries 1
ext subscribe ${url} --key /root/fleet.asc
echo "timer=$(systemctl show -P ActiveState ext-pull.timer)"
systemctl start ext-pull.service; echo "pull=$?"
${tools()}
record
echo "incoming=$(ls /var/lib/ext/incoming | tr '\\n' ' ')"
`, { failHealth: false });
    const p = first;
    expect(p.fields["systemd"], p.raw).toMatch(/^systemd 257/);
    expect(p.fields["failed"], p.raw).toBe("");
    // ext subscribe told the running systemd: the timer is armed now, not at the next boot.
    expect(p.raw).toMatch(/ext-pull\.timer is started and checks daily through systemd-sysupdate/);
    expect(p.fields["timer"], p.raw).toBe("active");
    expect(p.fields["pull"], p.raw).toBe("0");
    expect(p.fields["hello"], p.raw).toBe("Hello, world!");
    // The closure came relocated in the image: the guest's store is empty.
    expect(p.fields["nix_store"], p.raw).toBe("0");
    const s = json<Status>(p, "status_json");
    expect(s.generation).toBe(1);
    expect(s.subscription.installedVersion).toBe("1");
    expect(s.subscription.lastCheck).toMatchObject({ result: "installed", via: "sysupdate", newest: "1" });
    expect(json<Generation[]>(p, "generations_json").at(-1)!.boot).toMatchObject({ state: "pending", triesLeft: 1 });
    expect(p.fields["incoming"], p.raw).toBe("ext_1.raw ");
    expect(p.raw).toMatch(/generation 1 is active \(\+hello 2\.10\)/); // the service's journal
  });

  it("boot 2, good: generation 1 is blessed; version 2 is picked up by the service; rollback returns to 1, and --to 2 back", () => {
    publish("2", ["hello", "jq"]);
    const p = boot(`
systemctl start ext-pull.service; echo "pull=$?"
${tools("_pulled")}
ext rollback; echo "rollback=$?"
${tools("_rolledback")}
echo "again=$(systemctl start ext-pull.service && systemctl show -P Result ext-pull.service)"
record
ext rollback --to 2; echo "forward=$?"
${tools("_forward")}
record _forward
`, { failHealth: false });
    expect(p.fields["select"], p.raw).toBe("active/success");
    expect(p.fields["bless"], p.raw).toBe("active/success");
    expect(p.fields["failed"], p.raw).toBe("");
    expect(p.fields["pull"], p.raw).toBe("0");
    expect(p.fields["jq_pulled"], p.raw).toBe("1");
    expect(p.fields["hello_pulled"], p.raw).toBe("Hello, world!");
    expect(p.fields["rollback"], p.raw).toBe("0");
    expect(p.fields["jq_rolledback"], p.raw).toBe("");
    expect(p.fields["hello_rolledback"], p.raw).toBe("Hello, world!");
    expect(p.fields["again"], p.raw).toBe("success");
    const s = json<Status>(p, "status_json");
    expect(s.generation).toBe(1);
    expect(s.subscription).toMatchObject({ installedVersion: "1", newestImported: { version: "2", generation: 2 } });
    expect(p.fields["forward"], p.raw).toBe("0");
    expect(p.fields["jq_forward"], p.raw).toBe("1");
    expect(p.raw).toMatch(/generation 2 is active \(\+jq 1\.6\)/);
    expect(p.raw).toMatch(/nothing to do: version 2 was installed as generation 2/);
    const gens = json<Generation[]>(p, "generations_json_forward");
    expect(gens.find((x) => x.id === 1)!.boot).toMatchObject({ state: "good" });
    expect(gens.at(-1)!.boot).toMatchObject({ state: "pending", triesLeft: 1 });
  });

  it("boot 3, not good: version 2 is tried (jq runs) and not blessed; boot 4, not good: back to version 1; the next check leaves it so", () => {
    const tried = boot(tools(), { failHealth: true });
    expect(tried.fields["select"], tried.raw).toBe("active/success");
    expect(tried.fields["jq"], tried.raw).toBe("1");
    expect(tried.fields["bless"], tried.raw).not.toBe("active/success");
    expect(tried.raw).toMatch(/generation \d+ is on trial: 0 more boot\(s\)/);

    const back = boot(`
${tools()}
systemctl start ext-pull.service; echo "pull=$?"
echo "jq_after_check=$(echo '{"a":1}' | /usr/bin/jq -c .a 2>/dev/null)"
record
ext status
`, { failHealth: true });
    expect(back.fields["select"], back.raw).toBe("active/success");
    expect(back.fields["hello"], back.raw).toBe("Hello, world!");
    expect(back.fields["jq"], back.raw).toBe("");
    expect(back.raw).toMatch(/did not reach a good boot in 1 try: went back to generation 1/);
    expect(back.fields["pull"], back.raw).toBe("0");
    expect(back.fields["jq_after_check"], back.raw).toBe("");
    const s = json<Status>(back, "status_json");
    expect(s.generation).toBe(1);
    expect(s.subscription).toMatchObject({ installedVersion: "1", newestImported: { version: "2" } });
    expect(back.raw).toMatch(/reverted: .* to generation 1/);
  });

  it("boot 5, good: generation 1 stays and is blessed again; --auto-upgrade's timer is started, and its service finds nothing to do", () => {
    const p = boot(`
${tools()}
ext setup --auto-upgrade daily
echo "upgrade_timer=$(systemctl show -P ActiveState ext-upgrade.timer)"
systemctl start ext-upgrade.service; echo "upgrade=$?"
record
`, { failHealth: false });
    expect(p.fields["bless"], p.raw).toBe("active/success");
    expect(p.fields["hello"], p.raw).toBe("Hello, world!");
    expect(p.fields["jq"], p.raw).toBe("");
    expect(p.fields["failed"], p.raw).toBe("");
    expect(p.fields["upgrade_timer"], p.raw).toBe("active");
    expect(p.fields["upgrade"], p.raw).toBe("0");
    expect(p.raw).toMatch(/auto-upgrade \(the subscription's check\): up-to-date/); // the service's journal
    expect(json<Generation[]>(p, "generations_json").map((x) => x.id), "rollbacks make no generation; nothing new was installed").toEqual([1, 2]);
    expect(json<Status>(p, "status_json").generation).toBe(1);
  });
});
