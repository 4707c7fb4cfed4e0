import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests run real nix, mkfs.erofs and systemd-sysext; they share /nix/store and
    // loop devices, so files run one at a time and each test gets generous time.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
