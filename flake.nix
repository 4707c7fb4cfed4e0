{
  # ext as a Nix package, for hosts without Node.js (KDE Linux, Fedora Atomic, …). Node is in the
  # package's closure, so none is needed on the host. Three ways to use it (docs/install.md):
  #
  #   nix run github:OWNER/ext -- add ripgrep          # once, without installing
  #   nix profile install github:OWNER/ext             # into the user's profile (needs /nix)
  #   ext --source github:OWNER/ext add ext            # ext manages itself: /usr/bin/ext in the
  #                                                    # sysext image, relocated to /usr/store,
  #                                                    # survives OS updates, no /nix needed
  #
  # Built with nixpkgs' buildNpmPackage from package.json/package-lock.json (importNpmLock: every
  # dependency is fetched by the integrity hash the lock file already records, so there is no
  # npmDepsHash to keep up to date). Only `nix-instantiate --parse` was run on this file where it was
  # written (no network, no nixpkgs there): the first real `nix build` should be watched.
  description = "ext: add command-line tools from nixpkgs to image-based Linux as systemd-sysext images";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      # systemd-sysext and EROFS are Linux things; ext's images declare the architecture.
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      package = builtins.fromJSON (builtins.readFile ./package.json);
    in
    {
      packages = forAllSystems (pkgs:
        let
          inherit (pkgs) lib;

          ext = pkgs.buildNpmPackage {
            pname = "ext";
            inherit (package) version;

            # Only what the build reads: a change to tests or docs does not rebuild ext.
            src = lib.fileset.toSource {
              root = ./.;
              fileset = lib.fileset.unions [
                ./package.json
                ./package-lock.json
                ./tsconfig.json
                ./src
                ./scripts/bundle.mjs
                ./scripts/man-page.mjs
                # bundle.mjs runs it; with nixpkgs' node (a store path) it makes no snapshot today
                # (docs/startup.md: ext's self-install would rewrite the blob), and dist/snapshot is not
                # in package.json "files": the package runs bin/ext.js.
                ./scripts/snapshot.mjs
                ./bin
                ./templates
                ./schemas
              ];
            };

            # Dependencies from the lock file (no fixed-output hash to update by hand).
            npmDeps = pkgs.importNpmLock {
              package = lib.importJSON ./package.json;
              packageLock = lib.importJSON ./package-lock.json;
            };
            npmConfigHook = pkgs.importNpmLock.npmConfigHook;

            # package.json "engines": node >= 20.
            nodejs = pkgs.nodejs;

            # `npm run build` (tsc; scripts/bundle.mjs: ext and its libraries in dist/bundle/;
            # scripts/man-page.mjs: dist/ext.1 from the command list) is the default build script;
            # npmInstallHook then installs what `npm pack` would publish (package.json "files": bin,
            # dist/bundle, dist/ext.1, templates, schemas) into
            # $out/lib/node_modules/ext and wraps package.json "bin" as $out/bin/ext (node from the
            # closure). The bundle needs no node_modules at run time.

            # mkfs.erofs, fsck.erofs and dump.erofs from nixpkgs when the host has none; the host's
            # come first (--suffix). systemd-sysext and nix are the host's: a Nix from nixpkgs would be
            # relocated to /usr/store along with ext, and look for its store there.
            makeWrapperArgs = [ "--suffix" "PATH" ":" (lib.makeBinPath [ pkgs.erofs-utils ]) ];

            # ext relocates every "/nix/store" byte sequence of an image to "/usr/store". Its own
            # JavaScript names /nix/store as text (the prefix it looks for, validation patterns,
            # messages); when ext is installed with ext, that text must survive, so the script writes
            # it as "/nix\/store" — the same string to JavaScript and JSON, other bytes — and leaves
            # real references ("/nix/store/<hash>-…", e.g. patched shebangs) to be relocated. The
            # self-hosting test's package (test/fixtures-self) runs the same script.
            #
            # The man page goes where man finds it (share/man/man1; ext's own farm links it into
            # /usr/share/man when ext installs itself).
            postInstall = ''
              node ${./scripts/escape-store-literals.cjs} "$out/lib/node_modules/ext"
              install -Dm644 dist/ext.1 "$out/share/man/man1/ext.1"
            '';

            doInstallCheck = true;
            installCheckPhase = ''
              runHook preInstallCheck
              [ "$("$out/bin/ext" --version)" = "${package.version}" ]
              "$out/bin/ext" --help >/dev/null
              grep -q '^\.TH EXT 1' "$out/share/man/man1/ext.1"
              runHook postInstallCheck
            '';

            meta = {
              description = package.description;
              license = lib.licenses.mit;
              mainProgram = "ext";
              platforms = lib.platforms.linux;
            };
          };
        in
        {
          inherit ext;
          default = ext;
          # The bootstrap image's other two packages (`ext build --bootstrap --source <this flake>`,
          # docs/install.md): the Node.js ext's closure already has, and nixpkgs' Nix, whose
          # compiled-in paths are its own store paths and so are relocated with it.
          inherit (pkgs) nodejs nix;
        });

      apps = forAllSystems (pkgs:
        let
          app = {
            type = "app";
            program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.ext}/bin/ext";
          };
        in
        {
          ext = app;
          default = app;
        });
    };
}
