# A shell with every prerequisite of `make run` / `make test`: nix-shell, then the same commands.
{ pkgs ? import <nixpkgs> { } }:
pkgs.mkShell {
  packages = [
    pkgs.python311
    pkgs.uv
    pkgs.jdk17_headless
    pkgs.maven
    pkgs.postgresql_15
    pkgs.gnumake
    pkgs.chromium
    pkgs.chromedriver
  ];
  shellHook = ''
    export PG_BINDIR=${pkgs.postgresql_15}/bin
  '';
}
