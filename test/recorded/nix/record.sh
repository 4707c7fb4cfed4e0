#!/bin/sh
# Re-records the Nix outputs in ./nix-<version>/ from a throwaway flake, with the nix on PATH.
# Run it on each host of the matrix: `bash scripts/in-host.sh trixie bash test/recorded/nix/record.sh`
# (and sid), or plainly on Debian 12. Every file in ./nix-*/ was recorded this way; none is hand-written.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=$(nix --version | sed 's/.* //')
out="$here/nix-$version"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NIX_CONFIG="experimental-features = nix-command flakes
substituters =
flake-registry =
warn-dirty = false
extra-sandbox-paths = /usr /lib=/usr/lib /lib64=/usr/lib64$(nix --extra-experimental-features nix-command show-config 2>/dev/null | grep -q '^sandbox-paths = .*/bin/sh=' || echo ' /bin/sh=/usr/bin/dash')"

mkdir "$tmp/flake"
cat >"$tmp/flake/flake.nix" <<'NIX'
{
  description = "ext recorded-output flake";
  outputs = { self }: let
    system = "x86_64-linux";
    mk = name: script: extra: builtins.derivation ({
      inherit name system; builder = "/bin/sh"; PATH = "/bin:/usr/bin"; args = [ "-c" script ];
    } // extra);
    dep = mk "recdep-1.0" "echo dependency > $out" { };
    good = mk "recgood-2.3" "mkdir -p $out/bin; printf '#!/bin/sh\\necho %s\\n' ${dep} > $out/bin/recgood; chmod +x $out/bin/recgood" { }
      // { pname = "recgood"; version = "2.3"; meta = { description = "a package that works"; license = { spdxId = "MIT"; shortName = "mit"; }; homepage = "https://example.org/recgood"; }; };
    multi = mk "recmulti-0.1" "echo a > $out; echo b > $man" { outputs = [ "out" "man" ]; };
    broken = mk "recbroken-1" "echo compiling; echo 'error: something went wrong' >&2; exit 1" { };
    needsBroken = mk "recneeds-1" "echo ${broken} > $out" { };
  in {
    packages.${system} = { recgood = good; recdep = dep; recmulti = multi; recbroken = broken; recneeds = needsBroken; };
  };
}
NIX
# Fixed times, so that lastModified, narHash and the git rev are the same on every recording.
touch -d @1700000000 "$tmp/flake/flake.nix" "$tmp/flake"
export GIT_AUTHOR_DATE=@1700000000 GIT_COMMITTER_DATE=@1700000000
F="path:$tmp/flake"
nixx() { nix --extra-experimental-features 'nix-command flakes' "$@"; }
scrub() { sed "s|$tmp|/tmp/ext-rec|g"; }

nix --version >"$out/version.txt"
nixx build --no-link --json "$F#recgood" "$F#recmulti.man" | scrub >"$out/build.json"
good=$(nixx eval --raw "$F#recgood.outPath")
multi=$(nixx eval --raw "$F#recmulti.outPath")
nixx path-info --json --recursive "$good" "$multi" | scrub >"$out/path-info.json"
nixx path-info --json /nix/store/00000000000000000000000000000000-missing 2>/dev/null | scrub >"$out/path-info-invalid.json" || true
nixx flake metadata --json "$F" | scrub >"$out/flake-metadata-path.json"
( cd "$tmp/flake" && git init -q && git add flake.nix && git -c user.email=r@e -c user.name=r commit -qm rec )
nixx flake metadata --json "git+file://$tmp/flake" | scrub >"$out/flake-metadata-git.json"
nixx search --json "$F" rec 2>/dev/null | scrub >"$out/search.json"
nixx eval --json "$F#packages.x86_64-linux" --apply builtins.attrNames | scrub >"$out/attr-names.json"

nixx build --no-link --json "$F#recgods" 2>&1 >/dev/null | scrub >"$out/stderr-unknown-attribute.txt" || true
nixx build --no-link --json "$F#recbroken" 2>&1 >/dev/null | scrub >"$out/stderr-build-failed.txt" || true
nixx build --no-link --json -L "$F#recbroken" 2>&1 >/dev/null | scrub >"$out/stderr-build-failed-L.txt" || true
nixx build --no-link --json "$F#recgood" "$F#recneeds" 2>&1 >/dev/null | scrub >"$out/stderr-dependency-failed.txt" || true
nixx eval --json "path:$tmp/nonexistent#x" 2>&1 >/dev/null | scrub >"$out/stderr-source-missing.txt" || true
mkdir "$tmp/empty"
nixx eval --json "$tmp/empty#x" 2>&1 >/dev/null | scrub >"$out/stderr-not-a-flake.txt" || true
nixx eval --json "path:$tmp/empty#x" 2>&1 >/dev/null | scrub >"$out/stderr-not-a-flake-path.txt" || true
nixx eval --json "nixpkgs#hello" 2>&1 >/dev/null | scrub >"$out/stderr-registry.txt" || true
mkdir "$tmp/evalfail"
cat >"$tmp/evalfail/flake.nix" <<'NIX'
{ outputs = { self }: { packages.x86_64-linux.refused = throw "Package ‘refused-1.0’ in /nix/store/x/default.nix:1 has an unfree license (‘unfree’), refusing to evaluate."; }; }
NIX
nixx eval --json "path:$tmp/evalfail#refused" 2>&1 >/dev/null | scrub >"$out/stderr-eval-refused.txt" || true
# Output selection: `^man` where Nix has it (≥ 2.9); on Nix ≥ 2.26 `.man` of a plain derivation builds `out`.
minor=$(nix --version | sed 's/.* //' | cut -d. -f2)
if [ "$minor" -ge 9 ]; then
  nixx build --no-link --json "$F#recgood" "$F#recmulti^man" | scrub >"$out/build-caret.json"
fi
# `path-info --json-format 2` where Nix has it (≥ 2.33).
if nixx path-info --json --json-format 2 "$good" >/dev/null 2>&1; then
  nixx path-info --json --json-format 2 --recursive "$good" "$multi" | scrub >"$out/path-info-format2.json"
  nixx path-info --json --json-format 2 /nix/store/00000000000000000000000000000000-missing 2>/dev/null | scrub >"$out/path-info-invalid-format2.json" || true
fi
# Building into a chroot store below a world-writable directory (Nix 2.34 refuses it; 2.26 does not).
mkdir -m 1777 "$tmp/open"
if ! nixx build --store "$tmp/open/store" --no-link "$F#recdep" >/dev/null 2>"$tmp/ww.err"; then
  scrub <"$tmp/ww.err" >"$out/stderr-store-world-writable.txt"
fi
echo "recorded into $out"
