import { listGenerations, nextGenerationId } from "../../generations/store.js";
import type { GenerationRecord } from "../../generations/record.js";
import { need, type Step } from "../step.js";
import type { TxEnv } from "../types.js";

// The record of the generation being made, from what the earlier steps made. Nothing is written:
// commit writes it.
export const describeStep: Step = {
  name: "describe",
  description: "the new generation's record, from what the earlier steps made",
  when: "building",
  async run({ env, made }) {
    const plan = need(made, "plan");
    if (plan.kind !== "build") return;
    const packages = need(made, "packages");
    const closure = need(made, "closure");
    const image = made.packed
      ? { sha256: made.packed.sha256, size: made.packed.size, compression: env.compression, ...(made.packed.appended ? { appended: made.packed.appended } : {}) }
      : made.reusedImage ?? null;
    const links = made.stageReport
      ? made.stageReport.links.filter((l) => l.startsWith("usr/bin/") || l.startsWith("usr/sbin/"))
      // A reused image was described by an earlier generation with the same key.
      : packages.length > 0 ? (await listGenerations(env.layout)).find((g) => g.imageKey === made.imageKey)?.links ?? [] : [];
    const record: GenerationRecord = {
      ...await recordHeader(env),
      source: plan.lockedSource ?? { original: env.source },
      packages,
      closure: { paths: closure.map((c) => c.path).sort(), narSize: closure.reduce((n, c) => n + c.narSize, 0) },
      image,
      imageKey: made.imageKey ?? null,
      links,
      parent: plan.current?.id ?? null,
    };
    return { record };
  },
};

/** The fields every new generation's record starts with (describe, and import: steps/import.ts). */
export async function recordHeader(env: TxEnv): Promise<Pick<GenerationRecord, "recordVersion" | "id" | "createdAt" | "command" | "extensionName">> {
  return {
    recordVersion: 1,
    id: await nextGenerationId(env.layout),
    createdAt: new Date().toISOString(),
    command: env.command,
    extensionName: env.extensionName,
  };
}
