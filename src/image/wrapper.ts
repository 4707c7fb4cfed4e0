// The /bin/sh wrapper the farm writes instead of a link for a command that finds its library from the
// path it was started by (farm.ts, STARTED_BY_PATH). Its text is fixed, so that the next transaction
// recognises the wrapper a merged generation shows in /usr as ext's own (HostView.isOwnLink).

export function wrapperScript(target: string): string {
  return `#!/bin/sh\n# ext: started by its own path, to find its library beside it (docs/design.md)\nexec '${target}' "$@"\n`;
}

/** The wrapper's target when `text` is exactly a wrapper ext writes, else undefined. Store paths
 *  hold no quote (store-paths.ts), so the target needs no escaping. */
export function wrapperTarget(text: string): string | undefined {
  const m = /^#!\/bin\/sh\n# ext: [^\n]*\nexec '(\/usr\/store\/[^'\n]+)' "\$@"\n$/.exec(text);
  return m?.[1];
}
