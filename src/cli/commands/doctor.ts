import type { CommandContext } from "../context.js";
import { countByStatus, realHost, runChecks, type Finding, type Host, type Status } from "../../doctor/index.js";
import { ExitCode } from "../../errors.js";
import { templatesDir } from "../../boot/units.js";

// `ext doctor`: checks the host and says how to fix each finding. Reads only; runs without root.
// Exit code 1 when a finding is an error (ext cannot work here), 0 otherwise.

export interface DoctorResult {
  /** No finding is an error. */
  ok: boolean;
  root: string;
  summary: Record<Status, number>;
  findings: Finding[];
}

export async function doctor(ctx: CommandContext, opts: { host?: Host; templatesDir?: string } = {}): Promise<DoctorResult> {
  ctx.reporter.phase("checking the host");
  const findings = await runChecks({
    layout: ctx.layout,
    extensionName: ctx.extensionName,
    compression: ctx.compression,
    nix: ctx.nix,
    templatesDir: opts.templatesDir ?? templatesDir(),
    host: opts.host ?? realHost,
    architecture: ctx.architecture,
  });
  const summary = countByStatus(findings);
  return { ok: summary.error === 0, root: ctx.layout.root, summary, findings };
}

export function doctorExitCode(r: DoctorResult): number {
  return r.ok ? ExitCode.ok : ExitCode.user;
}

const LABEL: Record<Status, string> = { ok: "ok", info: "info", warning: "warn", error: "ERROR" };

export function formatDoctor(r: DoctorResult): string[] {
  const width = Math.max(...r.findings.map((f) => f.check.length), 5);
  const lines: string[] = [];
  for (const f of r.findings) {
    lines.push(`${LABEL[f.status].padEnd(5)}  ${f.check.padEnd(width)}  ${f.message}`);
    if (f.fix) lines.push(`${" ".repeat(7 + width)}  fix: ${f.fix}`);
  }
  const { warning, error } = r.summary;
  lines.push("");
  lines.push(error > 0
    ? `${error} error(s), ${warning} warning(s): ext cannot work on this host until the errors are fixed`
    : warning > 0
      ? `${warning} warning(s): ext can work here; the fixes above avoid surprises`
      : "everything ext needs is in place");
  return lines;
}
