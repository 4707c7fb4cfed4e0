import { describe, it, expect } from "vitest";
import { explain } from "../../../src/fleet/sysupdate.js";

// What systemd-sysupdate 257 (Debian trixie) and 262 (sid), through their systemd-pull, printed in test/integration/fleet.test.ts
// for each failure, and the meaning ext puts first in its message.
const RECORDED: [string, string, string][] = [
  ["wrong signature", "Downloading 138B for http://127.0.0.1:41939/badsig/SHA256SUMS.gpg.\nDOWNLOAD INVALID: Signature verification failed.\n(sd-pull) failed with exit status 1.", "the signature of SHA256SUMS does not verify"],
  ["tampered image", "Downloading 138B for http://127.0.0.1:41939/tampered/SHA256SUMS.gpg.\nDownload of http://127.0.0.1:41939/tampered/ext_3.raw complete.\nDOWNLOAD INVALID: Checksum of http://127.0.0.1:41939/tampered/ext_3.raw file did not check out, file has been tampered with.\nExiting.\n(sd-pull-raw) failed with exit status 1: Bad message", "the downloaded image does not match its signed SHA256SUMS"],
  ["tampered image (systemd 262, sid)", "Pulling 'http://127.0.0.1:34621/tampered/ext_9.raw', saving as '/var/lib/ext/incoming/.sysupdate.partial.ext_9.raw'.\nGot 2% of http://127.0.0.1:34621/tampered/ext_9.raw.\nChecksum of downloaded resource does not match expected checksum, yikes.\nFailed to retrieve image file.\nExiting.\n(sd-pull-raw) failed with exit status 1: Bad message", "the downloaded image does not match its signed SHA256SUMS"],
  ["full disk", "Downloading 6.1M for http://127.0.0.1:41939/full/ext_3.raw.\nGot 2% of http://127.0.0.1:41939/full/ext_3.raw.\nFailed to write file: Input/output error\nFailed to retrieve image file.\n(sd-pull-raw) failed with exit status 1: Input/output error", "the download could not be written"],
  ["server down", "Transfer failed: Could not connect to server\n(sd-pull) failed with exit status 1.", "the server cannot be reached"],
  ["cut mid-transfer (257)", "Downloading 6.1M for http://127.0.0.1:42465/cut/ext_9.raw.\nGot 2% of http://127.0.0.1:42465/cut/ext_9.raw.\nTransfer failed: Transferred a partial file\nFailed to retrieve image file.\nExiting.\n(sd-pull-raw) failed with exit status 1: Input/output error", "the download broke off before its end"],
];

describe("systemd-sysupdate's failures, explained", () => {
  it.each(RECORDED)("%s", (_what, stderr, meaning) => {
    expect(explain(stderr).startsWith(meaning)).toBe(true);
  });

  it("an unknown failure gives its last line", () => {
    expect(explain("something\nelse went wrong\n")).toBe("else went wrong");
  });
});
