import { readCurrentGeneration, readGeneration } from "../generations/store.js";
import type { InstalledPackage } from "../generations/record.js";
import { ExitCode, ExtError, UsageError } from "../errors.js";
import type { PackageSpec, Plan, TxEnv, TxRequest } from "./types.js";

// Decide what the transaction must do, from the request and the current generation only:
// no Nix here, so a request that changes nothing returns at once.

export async function plan(env: TxEnv, request: TxRequest): Promise<Plan> {
  const current = await readCurrentGeneration(env.layout);
  const installed = current?.packages ?? [];
  // A package that replaces one of ext's own (`ext add ext` from a source, `ext upgrade ext`) stays ext's own.
  const own = new Set(installed.filter((p) => p.self).map((p) => p.name));
  const withDefaults = (spec: PackageSpec): PackageSpec => ({
    ...spec,
    attr: spec.attr ?? spec.name,
    source: spec.source ?? env.source,
    ...(own.has(spec.name) ? { self: true } : {}),
  });
  switch (request.kind) {
    case "import":
      return (await import("./steps/import.js")).planImport(env, request, current);
    case "switch": {
      const target = await readGeneration(env.layout, request.generation);
      if (current?.id === target.id) return { kind: "noop", reason: `generation ${target.id} is already current`, current };
      return { kind: "switch", target, current };
    }
    case "add": {
      const fresh = request.packages.map(withDefaults).filter((spec) => !isSatisfied(spec, installed));
      if (fresh.length === 0) {
        return { kind: "noop", reason: `already installed: ${request.packages.map((p) => p.name).join(", ")}`, current };
      }
      const replaced = new Set(fresh.map((p) => p.name));
      return { kind: "build", current, resolve: fresh, keep: installed.filter((p) => !replaced.has(p.name)) };
    }
    case "remove": {
      const names = new Set(request.names);
      const unknown = request.names.filter((n) => !installed.some((p) => p.name === n));
      if (unknown.length > 0) {
        throw new ExtError(`not installed: ${unknown.join(", ")}`, {
          hint: installed.length > 0 ? `installed are: ${installed.map((p) => p.name).join(", ")}` : "nothing is installed",
        });
      }
      const own = installed.filter((p) => names.has(p.name) && p.self);
      if (own.length > 0) throw new SelfRemovalError(own.map((p) => p.name), installed.filter((p) => p.self).map((p) => p.name), env.extensionName);
      return { kind: "build", current, resolve: [], keep: installed.filter((p) => !names.has(p.name)) };
    }
    case "set": {
      const seen = new Set<string>();
      for (const spec of request.packages) {
        if (seen.has(spec.name)) throw new UsageError(`package '${spec.name}' is listed twice`);
        seen.add(spec.name);
      }
      const locked = new Map((request.locked ?? []).map((p) => [p.name, p]));
      const keep: InstalledPackage[] = [];
      const resolve: PackageSpec[] = [];
      for (const spec of request.packages.map(withDefaults)) {
        const have = locked.get(spec.name) ?? installed.find((p) => p.name === spec.name);
        if (have && sameRequest(spec, have)) keep.push({ ...have, priority: spec.priority, allowShadow: spec.allowShadow });
        else resolve.push(spec);
      }
      // ext's own packages stay when a tools.json does not name them: it describes the tools, not ext.
      for (const p of installed) if (p.self && !seen.has(p.name)) keep.push(p);
      const unchanged = resolve.length === 0 && keep.length === installed.length
        && keep.every((k) => installed.some((i) => i.name === k.name && samePaths(i, k) && i.priority === k.priority && !!i.allowShadow === !!k.allowShadow));
      if (unchanged && current) return { kind: "noop", reason: "the system already matches", current };
      if (unchanged && !current && keep.length === 0) return { kind: "noop", reason: "nothing to install", current };
      return { kind: "build", current, resolve, keep };
    }
  }
}

/** `ext remove ext` (or its Node.js, its Nix) where ext runs from its own image: the next generation
 *  would have no ext to manage it, nor a Nix to build with. A typed refusal, before anything is built. */
export class SelfRemovalError extends ExtError {
  override readonly code = "self-package";
  constructor(named: string[], own: string[], extensionName: string) {
    super(`${named.join(", ")} ${named.length === 1 ? "is" : "are"} what ext itself runs from here: refused`, {
      hint: `ext, its Node.js and its Nix (${own.join(", ")}) stay in every generation; to take ext off this machine, delete /var/lib/extensions/${extensionName}.raw and /var/lib/ext, then run 'systemd-sysext refresh'`,
      exitCode: ExitCode.user,
    });
  }
}

function isSatisfied(spec: PackageSpec, installed: InstalledPackage[]): boolean {
  const have = installed.find((p) => p.name === spec.name);
  return !!have && sameRequest(spec, have) && have.priority === spec.priority && !!have.allowShadow === !!spec.allowShadow;
}

/** Same attribute from the same source with the same outputs: no need to ask Nix again.
 *  `spec` has its defaults filled in. */
function sameRequest(spec: PackageSpec, have: InstalledPackage): boolean {
  return spec.attr === have.attr
    && spec.source === have.source
    && sameOutputs(spec.outputs, have.outputs);
}

function sameOutputs(a: string[] | undefined, b: string[] | undefined): boolean {
  return [...(a ?? [])].sort().join(",") === [...(b ?? [])].sort().join(",");
}

function samePaths(a: InstalledPackage, b: InstalledPackage): boolean {
  return JSON.stringify(Object.entries(a.outPaths).sort()) === JSON.stringify(Object.entries(b.outPaths).sort());
}
