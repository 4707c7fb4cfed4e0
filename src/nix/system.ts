// Nix names platforms `<cpu>-<kernel>`; Node names them differently.
const CPU: Record<string, string> = {
  x64: "x86_64",
  arm64: "aarch64",
  ia32: "i686",
  arm: "armv7l",
  riscv64: "riscv64",
  ppc64: "powerpc64le",
  s390x: "s390x",
  loong64: "loongarch64",
};

/** This host's Nix system, e.g. `x86_64-linux`. */
export function nixSystem(arch: string = process.arch, platform: string = process.platform): string {
  return `${CPU[arch] ?? arch}-${platform}`;
}
