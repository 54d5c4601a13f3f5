#!/usr/bin/env bash
# Everything a fresh machine needs before `uv sync`: uv itself, Java 17+, Maven, the
# PostgreSQL 15 server binaries, make, and Debian's chromium + chromedriver (the dashboard's
# browser tests). Used by the Makefile (setup, and so run/test) and by .ci/run.
#
#   scripts/bootstrap.sh             ensure uv and the system tools; print uv's path on stdout
#   scripts/bootstrap.sh --print-uv  ensure uv only; print its path (nothing else) on stdout
#   scripts/bootstrap.sh --check     report what is missing; install nothing (exit 1 if any)
#
# uv: taken from PATH, else from a private virtual environment (HOSPITAL_UV_VENV, default
# ~/.local/share/hospital/uv-venv) that this script creates with `python3 -m venv` and fills
# with `pip install uv` from PyPI. A venv, because Debian 12's system Python refuses
# `pip install` (PEP 668). System tools: when running as root on Debian they are installed
# with apt-get (one `apt-get update`); otherwise one sentence says what to install.
# Idempotent: with everything present it only looks, in well under a second.
set -euo pipefail

UV_VERSION="${HOSPITAL_UV_VERSION:-0.13.9}"
UV_VENV="${HOSPITAL_UV_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/hospital/uv-venv}"
mode="${1:-all}"

say() { echo "bootstrap: $*" >&2; }

is_debian_root() {
  [ "$(id -u)" -eq 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# --- uv ------------------------------------------------------------------------------------
find_uv() {
  local candidate
  for candidate in "$(command -v uv 2>/dev/null || true)" "$UV_VENV/uv-only/uv" \
    "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

install_uv() {
  local python
  python="$(command -v python3 || true)"
  if [ -z "$python" ]; then
    if is_debian_root; then apt_install python3 python3-venv; python="$(command -v python3)"; else
      say "uv is missing and there is no python3 to install it with: install uv (https://docs.astral.sh/uv/) or python3 with venv (Debian: apt-get install python3-venv), then run again"
      return 1
    fi
  fi
  say "installing uv $UV_VERSION into $UV_VENV (a private venv: PEP 668 forbids pip into the system Python)"
  rm -rf "$UV_VENV"
  mkdir -p "$(dirname "$UV_VENV")"
  if ! "$python" -m venv "$UV_VENV" >/dev/null 2>&1; then
    rm -rf "$UV_VENV"
    if is_debian_root; then
      apt_install python3-venv
      "$python" -m venv "$UV_VENV" >&2
    else
      say "uv is missing and python3 cannot create a virtual environment: install python3-venv (Debian: sudo apt-get install python3-venv) or uv itself (https://docs.astral.sh/uv/), then run again"
      return 1
    fi
  fi
  "$UV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
  "$UV_VENV/bin/uv" --version >/dev/null
  # A folder holding uv alone: callers may put it on PATH without the venv's python/pip.
  mkdir -p "$UV_VENV/uv-only"
  ln -sf ../bin/uv "$UV_VENV/uv-only/uv"
}

ensure_uv() {
  local uv
  if uv="$(find_uv)"; then echo "$uv"; return 0; fi
  if [ "$mode" = "--check" ]; then return 1; fi
  install_uv || return 1
  find_uv
}

# --- system tools --------------------------------------------------------------------------
java_ok() {
  local java major
  java="$(command -v "${JAVA_BIN:-java}" 2>/dev/null)" || return 1
  major="$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  [ -n "$major" ] && [ "$major" -ge 17 ]
}

pg_ok() {
  local dir version
  for dir in ${PG_BINDIR:-} "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] || continue
    version="$("$dir/postgres" --version 2>/dev/null | sed -n 's/.* \([0-9][0-9]*\)\..*/\1/p')"
    [ -n "$version" ] && [ "$version" -ge 15 ] && return 0
  done
  return 1
}

# name|package|check
TOOLS=(
  "Java 17+|openjdk-17-jre-headless|java_ok"
  "Maven|maven|command -v ${MAVEN_BIN:-mvn}"
  "PostgreSQL 15 server binaries|postgresql-15|pg_ok"
  "make|make|command -v make"
  "Chromium (/usr/bin/chromium)|chromium|test -x /usr/bin/chromium"
  "chromedriver (/usr/bin/chromedriver)|chromium-driver|test -x /usr/bin/chromedriver"
)

missing_tools() {
  local entry name package check
  for entry in "${TOOLS[@]}"; do
    IFS='|' read -r name package check <<<"$entry"
    if ! eval "$check" >/dev/null 2>&1; then echo "$name|$package"; fi
  done
}

ensure_tools() {
  local missing names packages
  missing="$(missing_tools)"
  [ -z "$missing" ] && return 0
  names="$(cut -d'|' -f1 <<<"$missing" | paste -sd, - | sed 's/,/, /g')"
  packages="$(cut -d'|' -f2 <<<"$missing" | paste -sd' ' -)"
  if [ "$mode" != "--check" ] && is_debian_root; then
    # shellcheck disable=SC2086  # one word per package
    apt_install $packages
    missing="$(missing_tools)"
    [ -z "$missing" ] && return 0
    names="$(cut -d'|' -f1 <<<"$missing" | paste -sd, - | sed 's/,/, /g')"
    packages="$(cut -d'|' -f2 <<<"$missing" | paste -sd' ' -)"
  fi
  say "missing: $names; install them (Debian 12: sudo apt-get install $packages) and run again"
  return 1
}

case "$mode" in
  --print-uv)
    ensure_uv
    ;;
  --check)
    rc=0
    if uv="$(ensure_uv)"; then say "uv: $uv"; else say "uv is missing (make setup installs it)"; rc=1; fi
    ensure_tools || rc=1
    exit "$rc"
    ;;
  all)
    uv="$(ensure_uv)"
    ensure_tools
    say "ready: uv $("$uv" --version | cut -d' ' -f2) at $uv; java, maven, postgresql, make, chromium present"
    echo "$uv"
    ;;
  *)
    say "unknown option $mode (use --print-uv or --check)"
    exit 2
    ;;
esac
