{
  # ext packaged from the working tree, for the self-hosting test (`ext add ext`). This file is a
  # template: `node test/fixtures-self/assemble.mjs DIR` copies it, ext-self.nix and the fixture
  # packages (../fixtures/packages.nix, platforms.nix, mk.nix) into DIR together with payload/ — the bundled
  # ext (dist/bundle/, bin/, package.json, templates/, schemas/; no node_modules) — and DIR is used as
  # `path:DIR`. A `path:` flake only sees its own directory, which is why the payload is copied in.
  # No inputs, builds offline. See README.md.
  description = "ext test fixture: ext itself from the working tree, with the host's node relinked into the store";

  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f:
        builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
    in
    {
      packages = forAllSystems (system:
        let
          base = import ./packages.nix { inherit system; };
          self-packages = import ./ext-self.nix { inherit system base; payload = ./payload; };
        in
        base // self-packages // { default = self-packages.ext; });
    };
}
