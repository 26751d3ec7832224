#!/usr/bin/env bash
# Removes serial-gateway installed by deploy/install.sh. Keeps /etc/serial-gateway (your config) and the
# serial-gateway user unless --purge is given.
set -euo pipefail

readonly UNIT=serial-gateway
readonly SERVICE_USER=serial-gateway

usage() {
  cat <<'EOF_USAGE'
Usage: sudo deploy/uninstall.sh [options]

Stops and disables the service, then removes /opt/serial-gateway, /usr/local/bin/serial-gateway, the
systemd unit, the udev rule and the Avahi announcement. Keeps /etc/serial-gateway/config.yaml and the
serial-gateway user.

Options:
  --purge       also remove /etc/serial-gateway, local unit drop-ins and the serial-gateway user
  --root DIR    remove from DIR instead of / (for tests); skips userdel, udevadm and systemctl and
                prints what it would have run
  -h, --help    this text
EOF_USAGE
}

say() { printf '%s\n' "$*"; }
die() {
  printf 'uninstall.sh: %s\n' "$*" >&2
  exit 1
}

ROOT=/
PURGE=0
ORIGINAL_ARGS=("$@")
while (($# > 0)); do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[[ -d $ROOT ]] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd -P)
LIVE=0
if [[ $ROOT == / ]]; then LIVE=1; fi
PREFIX=${ROOT%/}

if ((LIVE)) && ((EUID != 0)); then
  say "Removing from / needs root: re-running with sudo."
  exec sudo -- "$0" "${ORIGINAL_ARGS[@]}"
fi

run() {
  if ((LIVE)); then
    "$@"
  else
    say "  would run: $*"
  fi
}

remove() {
  local path
  for path in "$@"; do
    if [[ -e $path || -L $path ]]; then
      rm -rf -- "$path"
      say "Removed $path"
    fi
  done
}

if ((LIVE)); then
  # Tolerate a unit that is already gone: uninstalling twice is not an error.
  systemctl disable --now "$UNIT" 2>/dev/null || true
else
  say "  would run: systemctl disable --now $UNIT"
fi

remove "$PREFIX/etc/systemd/system/$UNIT.service"
if ((PURGE)); then
  remove "$PREFIX/etc/systemd/system/$UNIT.service.d"
fi
if ((LIVE)); then
  if [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl reset-failed "$UNIT" 2>/dev/null || true
  fi
else
  say "  would run: systemctl daemon-reload"
fi

remove "$PREFIX/etc/udev/rules.d/99-$UNIT.rules"
if ((LIVE)); then
  # Where udevd is not running (a container, an image), it reads the rules when it next starts.
  udevadm control --reload-rules 2>/dev/null || say "udevd is not running: nothing to reload."
else
  say "  would run: udevadm control --reload-rules"
fi
remove "$PREFIX/etc/avahi/services/$UNIT.service"
remove "$PREFIX/opt/serial-gateway" "$PREFIX/usr/local/bin/serial-gateway"

if ((PURGE)); then
  remove "$PREFIX/etc/serial-gateway"
  if ((LIVE)); then
    if getent passwd "$SERVICE_USER" >/dev/null; then
      userdel "$SERVICE_USER"
      say "Removed the user $SERVICE_USER"
    fi
  else
    say "  would run: userdel $SERVICE_USER"
  fi
  say "The gpio and dialout groups stay: other programs use them."
else
  if [[ -d $PREFIX/etc/serial-gateway ]]; then
    say "Kept $PREFIX/etc/serial-gateway (your config) and the user $SERVICE_USER; --purge removes them."
  fi
fi
say "serial-gateway is uninstalled."
