import type { Step } from "../step.js";
import { planStep } from "./plan.js";
import { importStep } from "./import.js";
import { prepareStep } from "./prepare.js";
import { realiseStep } from "./realise.js";
import { closeStep } from "./close.js";
import { reuseStep } from "./reuse.js";
import { stageStep } from "./stage.js";
import { packStep } from "./pack.js";
import { describeStep } from "./describe.js";
import { verifyStep } from "./verify.js";
import { commitStep } from "./commit.js";
import { activateStep } from "./activate.js";
import { checkStep } from "./check.js";
import { finalizeStep } from "./finalize.js";

// The transaction, in order: the one place that decides what follows what. A step whose decision
// (step.ts) does not hold is passed over:
//
//   add / remove / apply:  plan → prepare → realise → close → reuse → stage → pack → describe → verify → commit → activate → check → finalize
//   image reused:          plan → prepare → realise → close → reuse → describe → verify → commit → activate → check → finalize
//   rollback (switch):     plan → verify → commit → activate → check → finalize
//   import (ext pull):     plan → import → verify → commit → activate → check → finalize
//   nothing to do:         plan → finalize
//
// Before a step runs the journal names it, so a process killed inside any step is finished or
// undone by the next ext run; undo runs the started steps' undo, last first (undo.ts).
export const STEPS: readonly Step[] = [
  planStep,
  importStep,
  prepareStep,
  realiseStep,
  closeStep,
  reuseStep,
  stageStep,
  packStep,
  describeStep,
  verifyStep,
  commitStep,
  activateStep,
  checkStep,
  finalizeStep,
];

export type StepName = (typeof STEPS)[number]["name"];
