import type { DoctorInput } from "./types.js";

/** Extensions merged into /usr now (`systemd-sysext status`); undefined when it cannot be asked. */
export async function mergedExtensions(input: DoctorInput): Promise<string[] | undefined> {
  const rootArgs = input.layout.root === "/" ? [] : [`--root=${input.layout.root}`];
  const r = await input.host.run("systemd-sysext", ["status", "--json=short", ...rootArgs]);
  if (!r || r.exitCode !== 0) return undefined;
  try {
    const parsed = JSON.parse(r.stdout) as { hierarchy: string; extensions: string[] | string }[];
    const usr = parsed.find((h) => h.hierarchy === "/usr");
    // systemd prints "none" (a string) when nothing is merged.
    return usr && Array.isArray(usr.extensions) ? usr.extensions : [];
  } catch {
    return undefined;
  }
}
