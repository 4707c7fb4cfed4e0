import type { Command } from "../command.js";
import build from "./build.command.js";
import add from "./add.command.js";
import remove from "./remove.command.js";
import list from "./list.command.js";
import search from "./search.command.js";
import show from "./show.command.js";
import generations from "./generations.command.js";
import rollback from "./rollback.command.js";
import gc from "./gc.command.js";
import status from "./status.command.js";
import apply from "./apply.command.js";
import diff from "./diff.command.js";
import exportCommand from "./export.command.js";
import upgrade from "./upgrade.command.js";
import untrack from "./untrack.command.js";
import doctor from "./doctor.command.js";
import repair from "./repair.command.js";
import completion from "./completion.command.js";
import complete from "./complete.command.js";
import setup from "./setup.command.js";
import boot from "./boot.command.js";
import publish from "./publish.command.js";
import subscribe from "./subscribe.command.js";
import unsubscribe from "./unsubscribe.command.js";
import pull from "./pull.command.js";

// Every command ext has, in the order `ext --help` and the man page list them. A descriptor
// (src/cli/command.ts) imports its module only when it runs, so this list costs nothing at start-up.
export const COMMANDS: readonly Command[] = [
  build, add, remove, list, search, show, generations, rollback, gc, status,
  apply, diff, exportCommand, upgrade, untrack, doctor, repair, completion, complete, setup, boot,
  publish, subscribe, unsubscribe, pull,
];
