# ext as a package, built from the working tree (payload/, see assemble.mjs) and the host's node,
# in the style of ../fixtures/packages.nix: plain derivations built by the host's /bin/sh that copy
# host files into store paths and patchelf them against the glibc fixture. The result runs with no
# Node.js on the host and /nix hidden, once ext has relocated it to /usr/store.
#
#   libstdcxx  libstdc++.so.6 from the host (node needs it), RUNPATH libgcc + glibc
#   nodejs     the host's node (host.json names it and its version), interpreter and RUNPATH into the store
#   nix        the host's nix (Debian's nix-bin) and the libraries it links, for the bootstrap image
#   ext        payload/ in $out/lib/ext (with /nix/store literals escaped, escape-store-literals.cjs),
#              $out/bin/ext: `#!<dash>/bin/dash` running `<nodejs>/bin/node <out>/lib/ext/bin/ext.js "$@"`,
#              and $out/share/man/man1/ext.1 (which ext's farm links into /usr/share/man/man1)
{ system, base, payload }:
let
  platforms = import ./platforms.nix;
  plat = platforms.${system} or (throw "ext self fixture: unsupported system ${system}");
  hostLib = "/usr/lib/${plat.triplet}";
  inherit (base) glibc libgcc dash;
  interp = "${glibc}/lib/${plat.loader}";
  host = builtins.fromJSON (builtins.readFile ./host.json);
  pkg = builtins.fromJSON (builtins.readFile (payload + "/package.json"));

  prelude = ''
    set -eu
    export PATH=/usr/bin:/bin
    umask 022
    need_file() {
      [ -e "$1" ] || { echo "ext self fixture: $1 is missing on the host; apt-get install -y $2" >&2; exit 1; }
    }
    command -v patchelf >/dev/null 2>&1 || { echo "ext self fixture: patchelf is missing; apt-get install -y patchelf" >&2; exit 1; }
  '';

  mk = import ./mk.nix { inherit system prelude; };

  libstdcxx = mk {
    pname = "libstdcxx";
    version = "12";
    description = "GNU C++ standard library (libstdc++.so.6), copied from the host";
    license = "GPL-3.0-or-later WITH GCC-exception-3.1";
    homepage = "https://gcc.gnu.org/";
    script = ''
      need_file "${hostLib}/libstdc++.so.6" libstdc++6
      mkdir -p "$out/lib"
      real=$(readlink -f "${hostLib}/libstdc++.so.6")
      cp "$real" "$out/lib/''${real##*/}"
      chmod u+w "$out/lib/''${real##*/}"
      [ "''${real##*/}" = libstdc++.so.6 ] || ln -s "''${real##*/}" "$out/lib/libstdc++.so.6"
      patchelf --set-rpath "${libgcc}/lib:${glibc}/lib" "$out/lib/libstdc++.so.6"
    '';
  };

  nodejs = mk {
    pname = "nodejs";
    version = host.nodeVersion;
    description = "Node.js (the host's node binary, relinked into the store)";
    license = "MIT";
    homepage = "https://nodejs.org/";
    mainProgram = "node";
    env = { inherit interp; hostNode = host.nodePath; };
    script = ''
      need_file "$hostNode" nodejs
      mkdir -p "$out/bin" "$out/lib"
      cp "$hostNode" "$out/bin/node"
      chmod 0755 "$out/bin/node"
      # Debian's own nodejs (trixie, sid) links libnode.so and the libraries it is built with (libuv,
      # ICU, OpenSSL, c-ares…); a node from elsewhere may link none. Every library it needs that the
      # glibc, libgcc and libstdcxx fixtures do not hold is copied into $out/lib, found by asking the
      # host's loader (ldd is a bash script, and the sandbox has no /bin/bash).
      "/lib/${plat.triplet}/${plat.loader}" --list "$hostNode" | while read -r soname arrow path rest; do
        [ "$arrow" = "=>" ] && [ -f "$path" ] || continue
        case "$soname" in
          libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|libgcc_s.so.*|libstdc++.so.*|*ld-linux*) continue ;;
        esac
        cp "$(readlink -f "$path")" "$out/lib/$soname"
        chmod 0755 "$out/lib/$soname"
        patchelf --set-rpath "$out/lib:${libstdcxx}/lib:${libgcc}/lib:${glibc}/lib" "$out/lib/$soname"
      done
      patchelf --set-interpreter "$interp" \
        --set-rpath "$out/lib:${libstdcxx}/lib:${libgcc}/lib:${glibc}/lib" "$out/bin/node"
      [ "$(patchelf --print-interpreter "$out/bin/node")" = "$interp" ]
      got=$("$out/bin/node" --version)
      [ "$got" = "v${host.nodeVersion}" ] || { echo "ext self fixture: $hostNode is $got, host.json says v${host.nodeVersion}: assemble again" >&2; exit 1; }
    '';
  };

  # Nix itself, for the bootstrap image (docs/install.md, "The bootstrap image"): the host's nix
  # binary (Debian's nix-bin; host.json names it and its version) with every library it links that
  # the glibc, libgcc and libstdcxx fixtures do not hold (libnix*.so from /usr/lib/nix, boost, curl,
  # sqlite, libarchive…) copied into $out/lib, the whole set's RUNPATH pointing into the store.
  # Debian built it with /usr/libexec and /usr/bin compiled in, which are not in the store: Nix runs
  # its build hook as <libexec>/nix/build-remote, and on a host without nix-bin that is missing ("unexpected EOF
  # reading a line"). So the binary is libexec/nix/nix (with nix-*, build-remote linked to it: Nix
  # dispatches on argv[0]), and each bin/ command is a dash script that names the store's libexec and
  # bin (NIX_LIBEXEC_DIR, NIX_BIN_DIR) and runs it — as nixpkgs' Nix has its own store paths compiled in.
  nix = mk {
    pname = "nix";
    version = host.nixVersion;
    description = "Nix (the host's nix binary and its libraries, relinked into the store)";
    license = "LGPL-2.1-or-later";
    homepage = "https://nixos.org/";
    mainProgram = "nix";
    env = { inherit interp; hostNix = host.nixPath; };
    script = ''
      need_file "$hostNix" nix-bin
      mkdir -p "$out/bin" "$out/lib" "$out/libexec/nix"
      cp "$hostNix" "$out/libexec/nix/nix"
      chmod 0755 "$out/libexec/nix/nix"
      rpath="$out/lib:${libstdcxx}/lib:${libgcc}/lib:${glibc}/lib"
      "/lib/${plat.triplet}/${plat.loader}" --list "$hostNix" | while read -r soname arrow path rest; do
        [ "$arrow" = "=>" ] && [ -f "$path" ] || continue
        case "$soname" in
          libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|libgcc_s.so.*|libstdc++.so.*|*ld-linux*) continue ;;
        esac
        cp "$(readlink -f "$path")" "$out/lib/$soname"
        chmod 0755 "$out/lib/$soname"
        patchelf --set-rpath "$rpath" "$out/lib/$soname"
      done
      patchelf --set-interpreter "$interp" --set-rpath "$rpath" "$out/libexec/nix/nix"
      for c in nix nix-build nix-channel nix-collect-garbage nix-copy-closure nix-daemon nix-env nix-hash nix-instantiate nix-prefetch-url nix-shell nix-store; do
        [ "$c" = nix ] || ln -s nix "$out/libexec/nix/$c"
        printf '#!%s\nexport NIX_LIBEXEC_DIR=%s NIX_BIN_DIR=%s\nexec %s "$@"\n' \
          "${dash}/bin/dash" "$out/libexec" "$out/bin" "$out/libexec/nix/$c" > "$out/bin/$c"
        chmod 0755 "$out/bin/$c"
      done
      ln -s nix "$out/libexec/nix/build-remote"
      got=$("$out/bin/nix" --version)
      [ "$got" = "nix (Nix) ${host.nixVersion}" ] || { echo "ext self fixture: $hostNix is '$got', host.json says ${host.nixVersion}: assemble again" >&2; exit 1; }
    '';
  };

  ext = mk {
    pname = "ext";
    version = pkg.version;
    description = pkg.description;
    license = pkg.license;
    homepage = "https://example.invalid/ext";
    mainProgram = "ext";
    env = { inherit payload; escape = ./escape-store-literals.cjs; };
    script = ''
      mkdir -p "$out/lib/ext" "$out/bin" "$out/share/man/man1"
      cp -R "$payload/." "$out/lib/ext/"
      cp "$payload/dist/ext.1" "$out/share/man/man1/ext.1"
      chmod -R u+w "$out/lib/ext"
      "${nodejs}/bin/node" "$escape" "$out/lib/ext"
      cat > "$out/bin/ext" <<EOF
      #!${dash}/bin/dash
      exec ${nodejs}/bin/node $out/lib/ext/bin/ext.js "\$@"
      EOF
      chmod 0755 "$out/bin/ext"
      [ "$("$out/bin/ext" --version)" = "${pkg.version}" ]
    '';
  };
in
{
  inherit libstdcxx nodejs nix ext;
}
