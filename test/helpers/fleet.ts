import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { extEnv, extJson, extOk, EXT, REPO, type Namespace, type RunOutput } from "./namespace.js";

// What the fleet tests (fleet.test.ts: plain images; ddi.test.ts: verity DDIs) share: a publisher's
// side — a directory with a private copy of the fixtures, a gpg home holding the fleet's signing key,
// tools.json files, ext run without a namespace or root (as in CI) and a loopback HTTP server over
// srv/ — and a machine's side: ext in a namespace, and what its administrator could see change.

export function sh(argv: string[], env: Record<string, string> = {}): RunOutput {
  const r = spawnSync(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, encoding: "utf8" });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function must(r: RunOutput, what: string): RunOutput {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

export function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Starts a server that prints `port N` once it listens (python3 -u, port 0: the kernel chooses). */
export function serve(argv: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let seen = "";
    child.stdout!.on("data", (c: Buffer) => {
      seen += c.toString();
      const m = /port (\d+)/.exec(seen);
      if (m) resolve({ child, url: `http://127.0.0.1:${m[1]}` });
    });
    child.on("exit", (code) => reject(new Error(`${argv.join(" ")} exited (${code})`)));
  });
}

/** The publishing side of a fleet test, in a fresh directory under /tmp named PREFIX…. */
export class Publisher {
  readonly dir: string;
  /** What the HTTP server serves: one directory per channel. */
  readonly srv: string;
  readonly gnupg: string;
  /** The flake reference of the private copy of the fixtures (the lock pins it, and other tests'
   *  edits cannot move it). */
  readonly fixtures: string;
  /** The fleet's public key, as a machine is given it. */
  readonly fleetKey: string;
  private servers: ChildProcess[] = [];

  constructor(prefix: string) {
    this.dir = mkdtempSync(prefix);
    // nobody publishes in some tests: it reads the tools.json and the fixtures.
    chmodSync(this.dir, 0o755);
    cpSync(join(REPO, "test/fixtures"), join(this.dir, "fixtures"), { recursive: true });
    this.fixtures = `path:${this.dir}/fixtures`;
    this.srv = join(this.dir, "srv");
    mkdirSync(this.srv);
    this.gnupg = join(this.dir, "gnupg");
    mkdirSync(this.gnupg, { mode: 0o700 });
    this.gpg(["--passphrase", "", "--quick-gen-key", "fleet <fleet@example.org>", "ed25519", "sign", "never"]);
    this.fleetKey = join(this.dir, "fleet.asc");
    writeFileSync(this.fleetKey, this.gpg(["--armor", "--export", "fleet@example.org"]).stdout);
  }

  gpg(args: string[]): RunOutput {
    return must(sh(["gpg", "--batch", "--no-tty", ...args], { GNUPGHOME: this.gnupg }), `gpg ${args.join(" ")}`);
  }

  /** `ext` on the publishing side: no namespace, no root needed (CI). */
  ext(args: string[]): RunOutput {
    const r = spawnSync("node", [EXT, ...args], { env: { ...extEnv(), GNUPGHOME: this.gnupg }, encoding: "utf8" });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  toolsJson(packages: string[]): string {
    return JSON.stringify({ version: 1, source: this.fixtures, packages: Object.fromEntries(packages.map((p) => [p, {}])) }, null, 2) + "\n";
  }

  /** A tools.json of PACKAGES in a directory of its own (manifest-NAME), for its lock to sit beside it. */
  manifest(name: string, packages: string[]): string {
    const d = join(this.dir, `manifest-${name}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "tools.json"), this.toolsJson(packages));
    return join(d, "tools.json");
  }

  /** Loopback HTTP over srv/ from Debian's python3 (or SCRIPT, run with srv as its argument). */
  async serve(script?: string): Promise<string> {
    const argv = script === undefined
      ? ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", this.srv]
      : ["python3", "-u", script, this.srv];
    const { child, url } = await serve(argv);
    this.servers.push(child);
    return url;
  }

  close(): void {
    for (const s of this.servers) s.kill();
    sh(["gpgconf", "--kill", "all"], { GNUPGHOME: this.gnupg });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A machine's side: ext in NS (with ENV besides the tests' own), failing loudly where it must succeed. */
export function machine(ns: Namespace, env?: Record<string, string>) {
  const ok = (args: string[]): RunOutput => extOk(ns, args, env);
  const json = <T>(args: string[]): T => extJson<T>(ns, args, env);
  /** What a machine's administrator could see change. /var/lib/extensions' entries, not its "." and
   *  "..": in sid a directory appeared in /var/lib during ddi.test.ts' refused merge (".." went from 4
   *  to 5 links; which one was not looked into), which says nothing about /var/lib/extensions. */
  const snapshot = () => ({
    generations: json<{ id: number }[]>(["generations"]).map((g) => g.id),
    current: json<{ generation: number | null }>(["status"]).generation,
    extensions: ns.run(["sh", "-c", "ls -lA --time-style=+ /var/lib/extensions | tail -n +2; sha256sum /var/lib/extensions/*"]).stdout,
    images: ns.run(["ls", "/var/lib/ext/images"]).stdout,
    bins: ns.run(["sh", "-c", "ls /usr/bin | sort"]).stdout,
  });
  return { ok, json, snapshot };
}
