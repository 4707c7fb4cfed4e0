import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// What the real-boot tests (boot-real.test.ts: a Debian 12 guest; boot-fleet.test.ts: the trixie
// tree) share: a system tree booted by systemd-nspawn with systemd as PID 1, a health check unit that
// boot-complete.target requires (it fails while /etc/ext-test-fail-boot exists, as on a machine whose
// new extension set breaks a unit that must succeed), and a probe unit after ext-boot-bless.service
// whose script writes key=value lines to /root/probe.txt and powers off.

export interface Probe {
  raw: string;
  /** The first value of each key=value line. */
  fields: Record<string, string>;
  seconds: number;
}

export interface GuestOptions {
  /** The tree as this process writes it (for a tree mounted in a namespace: through /proc/PID/root). */
  root: string;
  /** The tree as systemd-nspawn is given it (-D), in the mount namespace ENTER runs it in. */
  dir: string;
  /** A directory of the test's for loop device nodes and console logs. */
  work: string;
  /** A prefix that runs nspawn where DIR is mounted (nsenter …); none: here. */
  enter?: string[];
  machine: string;
}

export class Guest {
  private boots = 0;

  constructor(private readonly o: GuestOptions) {
    // Loop device nodes for systemd-sysext inside the container (it has no devtmpfs).
    mkdirSync(join(o.work, "dev"), { recursive: true });
    for (let i = 0; i < 64; i++) {
      const node = join(o.work, "dev", `loop${i}`);
      if (!existsSync(node)) spawnSync("mknod", [node, "b", "7", String(i)]);
    }
  }

  /** A path of the guest's tree, as this process reaches it. */
  path(p: string): string {
    return join(this.o.root, p);
  }

  write(path: string, text: string, mode = 0o644): void {
    mkdirSync(join(this.path(path), ".."), { recursive: true });
    writeFileSync(this.path(path), text);
    chmodSync(this.path(path), mode);
  }

  read(path: string): string {
    return readFileSync(this.path(path), "utf8");
  }

  enable(unit: string, target: string, kind: "wants" | "requires" = "wants"): void {
    const dir = this.path(`etc/systemd/system/${target}.${kind}`);
    mkdirSync(dir, { recursive: true });
    symlinkSync(`/etc/systemd/system/${unit}`, join(dir, unit));
  }

  /** The health check and the probe unit, which runs SCRIPT (written to /etc/ext-probe.sh; it must
   *  write /root/probe.txt) after multi-user.target and ext-boot-bless.service, then powers off. */
  installTestUnits(script: string): void {
    this.write("etc/systemd/system/ext-test-health.service", `[Unit]
Description=Test health check (fails while /etc/ext-test-fail-boot exists)
Before=boot-complete.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'test ! -e /etc/ext-test-fail-boot'
[Install]
RequiredBy=boot-complete.target
`);
    this.enable("ext-test-health.service", "boot-complete.target", "requires");
    this.write("etc/ext-probe.sh", script, 0o755);
    this.write("etc/systemd/system/ext-test-probe.service", `[Unit]
Description=Test probe: what this boot sees, then power off
After=multi-user.target ext-boot-bless.service
[Service]
Type=oneshot
ExecStart=/etc/ext-probe.sh
ExecStartPost=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
`);
    this.enable("ext-test-probe.service", "multi-user.target");
  }

  /** One boot; `failHealth` makes it not good; BINDS are more nspawn --bind options. */
  boot(opts: { failHealth: boolean; binds?: string[] }): Probe {
    this.boots++;
    if (opts.failHealth) this.write("etc/ext-test-fail-boot", "");
    else rmSync(this.path("etc/ext-test-fail-boot"), { force: true });
    rmSync(this.path("root/probe.txt"), { force: true });
    const loops = Array.from({ length: 64 }, (_, i) => `--bind=${this.o.work}/dev/loop${i}:/dev/loop${i}`);
    const nspawn = ["systemd-nspawn", "-D", this.o.dir, "--boot", "--register=no", "--keep-unit", `--machine=${this.o.machine}`,
      ...(opts.binds ?? []), "--bind=/dev/loop-control", ...loops].join(" ");
    const log = join(this.o.work, `console-${this.boots}.log`);
    const argv = [...(this.o.enter ?? []), "script", "-qfec", nspawn, log];
    const started = Date.now();
    // systemd as PID 1 wants a terminal for its console: script(1) gives it one.
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 300_000, stdio: ["ignore", "pipe", "pipe"] });
    const seconds = (Date.now() - started) / 1000;
    if (!existsSync(this.path("root/probe.txt"))) {
      throw new Error(`boot ${this.boots}: no probe output (status ${r.status}); console log:\n${readFileSync(log, "utf8").slice(-4000)}`);
    }
    const raw = this.read("root/probe.txt");
    const fields: Record<string, string> = {};
    for (const line of raw.split("\n")) {
      const m = /^([a-z_0-9]+)=(.*)$/.exec(line);
      if (m && !(m[1]! in fields)) fields[m[1]!] = m[2]!;
    }
    return { raw, fields, seconds };
  }
}
