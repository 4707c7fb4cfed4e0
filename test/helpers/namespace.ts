import { spawn, spawnSync, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { OFFLINE_NIX_CONFIG, offlineNixEnv } from "./nix-env.js";

// A private mount namespace kept alive by a holder process; commands enter it with nsenter.
// Inside, /run and ext's state directories are tmpfs and / propagates to sysext's own mounts, so
// merges happen on this namespace's /usr only. Killing the holder ends the namespace and every mount.

export const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const FIXTURES = `path:${REPO}/test/fixtures`;
export const EXT = `${REPO}/bin/ext.js`;

export interface Namespace {
  pid: number;
  /** Runs argv inside the namespace; never throws, returns status and output. */
  run(argv: string[], opts?: { env?: Record<string, string>; hideNix?: boolean }): RunOutput;
  /** `node bin/ext.js …` inside the namespace, with the fixture source and offline Nix. */
  ext(args: string[], opts?: { env?: Record<string, string> }): RunOutput;
  /** The same, without blocking: read-only commands can run side by side. */
  extAsync(args: string[], opts?: { env?: Record<string, string> }): Promise<RunOutput>;
  /** Starts ext in the namespace without waiting. `detached`: in a process group of its own (its pid),
   *  with the tools it runs, so a test can kill the whole group. */
  spawnExt(args: string[], opts?: { env?: Record<string, string>; detached?: boolean }): ChildProcess;
  /** Reads a file as the namespace sees it. */
  read(path: string): string | undefined;
  close(): void;
}

export interface RunOutput {
  status: number;
  stdout: string;
  stderr: string;
}

// One tmpfs for /var/lib: images are hard-linked into /var/lib/extensions, which needs one file system.
const STATE_DIRS = ["/var/lib", "/run"];

/** The `out` store path of a fixture, built on the host (as `ext add` builds it); `timeoutMs` for the
 *  ones that may compile. */
export function buildFixture(attr: string, timeoutMs = 600_000): string {
  const json = execFileSync("nix", ["build", "--no-link", "--json", `${FIXTURES}#${attr}`], { env: offlineNixEnv(), encoding: "utf8", timeout: timeoutMs });
  return (JSON.parse(json) as { outputs: { out: string } }[])[0]!.outputs.out;
}

/** /nix/store/… → /usr/store/…, where an image shows it. */
export const relocated = (p: string) => p.replace(/^\/nix\/store\//, "/usr/store/");

export function extEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    NIX_CONFIG: OFFLINE_NIX_CONFIG,
    EXT_SOURCE: FIXTURES,
    NO_COLOR: "1",
    ...extra,
  };
}

export function openNamespace(): Namespace {
  // The holder dies with the process that made it (setpriv --pdeathsig), not only in close(): a test
  // run killed mid-file (a CI job stopped, ^C) otherwise leaves the namespace alive, and with it the
  // mounts and loop devices of the images merged there.
  const holder = spawn("setpriv", ["--pdeathsig", "KILL", "unshare", "-m", "--propagation", "private", "sleep", "infinity"], { stdio: "ignore" });
  const pid = holder.pid;
  if (pid === undefined) throw new Error("unshare did not start");
  // Wait until the holder is in its own namespace.
  const own = execFileSync("readlink", ["/proc/self/ns/mnt"]).toString();
  for (let i = 0; i < 200; i++) {
    try {
      if (execFileSync("readlink", [`/proc/${pid}/ns/mnt`]).toString() !== own) break;
    } catch {
      /* not yet */
    }
    execFileSync("sleep", ["0.01"]);
  }
  const enter = (argv: string[]) => ["nsenter", `--target=${pid}`, "--mount", "--", ...argv];
  const setup = [
    "mount --make-rshared /",
    ...STATE_DIRS.map((d) => `mkdir -p ${d} && mount -t tmpfs -o mode=755 tmpfs ${d}`),
  ].join(" && ");
  const setupArgv = enter(["sh", "-c", setup]);
  execFileSync(setupArgv[0]!, setupArgv.slice(1));

  const run: Namespace["run"] = (argv, opts = {}) => {
    const inner = opts.hideNix ? ["unshare", "-m", "sh", "-c", 'mount -t tmpfs tmpfs /nix && exec "$@"', "sh", ...argv] : argv;
    const full = enter(inner);
    const r = spawnSync(full[0]!, full.slice(1), { env: opts.env ?? process.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
  return {
    pid,
    run,
    ext: (args, opts = {}) => run(["node", EXT, ...args], { env: extEnv(opts.env) }),
    extAsync: (args, opts = {}) => new Promise((resolve) => {
      const full = enter(["node", EXT, ...args]);
      const child = spawn(full[0]!, full.slice(1), { env: extEnv(opts.env), stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.once("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
    }),
    spawnExt: (args, opts = {}) => {
      const full = enter(["node", EXT, ...args]);
      return spawn(full[0]!, full.slice(1), { env: extEnv(opts.env), stdio: ["ignore", "pipe", "pipe"], detached: opts.detached ?? false });
    },
    read: (path) => {
      try {
        return readFileSync(`/proc/${pid}/root${path}`, "utf8");
      } catch {
        return undefined;
      }
    },
    close: () => {
      holder.kill("SIGKILL");
    },
  };
}

/** A shell script in `ns` that must succeed: its stdout, trimmed. */
export function shOk(ns: Namespace, script: string): string {
  const r = ns.run(["sh", "-c", script]);
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}):\n${r.stderr}`);
  return r.stdout.trim();
}

/** `ext ARGS` in NS that must succeed: its output, or an error with what it printed (WHERE: e.g. " on trixie"). */
export function extOk(ns: Namespace, args: string[], env?: Record<string, string>, where = ""): RunOutput {
  const r = ns.ext(args, env ? { env } : {});
  if (r.status !== 0) throw new Error(`ext ${args.join(" ")} failed (${r.status})${where}:\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** `ext ARGS --json` in NS that must succeed, parsed. */
export function extJson<T>(ns: Namespace, args: string[], env?: Record<string, string>): T {
  return JSON.parse(extOk(ns, [...args, "--json"], env).stdout) as T;
}
