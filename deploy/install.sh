#!/usr/bin/env bash
# Installs or upgrades serial-gateway from a clone of the repository, on a Raspberry Pi or any systemd
# Linux. Run it again to upgrade in place: your /etc/serial-gateway/config.yaml is never overwritten.
set -euo pipefail
umask 022

readonly UNIT=serial-gateway
readonly SERVICE_USER=serial-gateway
readonly DEFAULT_PORT=2323
readonly MIN_NODE_MAJOR=20

usage() {
  cat <<'EOF'
Usage: sudo deploy/install.sh [options]

Installs serial-gateway as a systemd service:
  /opt/serial-gateway/                      the built program and its production dependencies
  /etc/serial-gateway/config.yaml           your config (created once from config/default.yaml, then kept)
  /etc/systemd/system/serial-gateway.service
  /etc/udev/rules.d/99-serial-gateway.rules /dev/labbox link and LED permissions
  /etc/avahi/services/serial-gateway.service  announces <hostname>.local on the LAN (if Avahi is there)
and creates the system user serial-gateway (groups dialout and gpio).

Options:
  --root DIR    install into DIR instead of / (for tests and images); skips useradd, udevadm, systemctl
                and prints what it would have run
  --from DIR    the clone to install from (default: the clone this script is in)
  --node PATH   the node binary the service runs (default: the one on PATH)
  --no-start    install and enable, but do not start or restart the service
  --no-npm      do not run npm (neither the build nor `npm ci --omit=dev` in /opt)
  -h, --help    this text
EOF
}

say() { printf '%s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

node_help() {
  cat <<'EOF'
serial-gateway needs Node.js 20 or newer; Node 22 (LTS) is recommended.
Raspberry Pi OS Bookworm's own `nodejs` package is 18, which is too old. Either:
  - NodeSource's apt repository:
      curl -fsSL https://deb.nodesource.com/setup_22.x | sudo -E bash -
      sudo apt-get install -y nodejs
  - or the official tarball for your CPU (uname -m: aarch64 -> linux-arm64, armv7l -> linux-armv7l) from
    https://nodejs.org/en/download, unpacked into /usr/local:
      sudo tar -xJf node-v22.*-linux-*.tar.xz -C /usr/local --strip-components=1
A Pi Zero or Pi 1 (armv6l) has no official build of Node 20 or newer.
Install it system-wide: the service cannot see /home (ProtectHome=yes), so an nvm install will not do.
EOF
}

ROOT=/
FROM=
NODE_BIN=
START=1
NPM=1
ORIGINAL_ARGS=("$@")
while (($# > 0)); do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --from) FROM=${2:?--from needs a directory}; shift 2 ;;
    --from=*) FROM=${1#--from=}; shift ;;
    --node) NODE_BIN=${2:?--node needs a path}; shift 2 ;;
    --node=*) NODE_BIN=${1#--node=}; shift ;;
    --no-start) START=0; shift ;;
    --no-npm) NPM=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

[[ -d $ROOT ]] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd -P)
LIVE=0
if [[ $ROOT == / ]]; then LIVE=1; fi
# Every installed path is $PREFIX/...: empty for a live install, the scratch root otherwise.
PREFIX=${ROOT%/}

# The node on the caller's PATH is the one to record: sudo's secure_path would find another (often the
# distribution's older one), so it is passed along explicitly.
if [[ -z $NODE_BIN ]]; then
  NODE_BIN=$(command -v node || true)
  [[ -n $NODE_BIN ]] || die "node is not installed. $(node_help)"
fi

if ((LIVE)) && ((EUID != 0)); then
  say "Installing into / needs root: re-running with sudo."
  exec sudo -- "$0" --node "$NODE_BIN" "${ORIGINAL_ARGS[@]}"
fi

check_node() {
  [[ $NODE_BIN == /* ]] || die "--node must be an absolute path, not $NODE_BIN"
  [[ -x $NODE_BIN ]] || die "$NODE_BIN is not executable"
  local major real
  major=$("$NODE_BIN" -p 'process.versions.node.split(".")[0]') || die "$NODE_BIN does not run"
  if ((major < MIN_NODE_MAJOR)); then
    node_help >&2
    die "$NODE_BIN is Node $("$NODE_BIN" --version); Node $MIN_NODE_MAJOR or newer is needed"
  fi
  real=$(readlink -f "$NODE_BIN")
  case "$real" in
    /home/* | /root/* | /run/user/*)
      node_help >&2
      die "$NODE_BIN lives in $real, which the service cannot see (ProtectHome=yes)"
      ;;
  esac
  say "Node: $NODE_BIN ($("$NODE_BIN" --version))"
}

# Commands that change the live system; with --root they are only reported.
run() {
  if ((LIVE)); then
    "$@"
  else
    say "  would run: $*"
  fi
}

build_if_needed() {
  if [[ -f $FROM/dist/src/main.js ]]; then
    return
  fi
  ((NPM)) || die "$FROM/dist/src/main.js is missing and --no-npm forbids building it (run: npm ci && npm run build)"
  say "Building in $FROM (npm ci && npm run build) ..."
  (cd "$FROM" && npm ci && npm run build)
  [[ -f $FROM/dist/src/main.js ]] || die "the build did not produce $FROM/dist/src/main.js"
}

install_program() {
  local opt=$PREFIX/opt/serial-gateway
  say "Program: $opt"
  mkdir -p "$opt"
  # Replace the code wholesale, so files removed upstream do not linger after an upgrade.
  rm -rf "$opt/dist" "$opt/config"
  mkdir -p "$opt/dist"
  cp -R "$FROM/dist/src" "$opt/dist/src"
  cp -R "$FROM/config" "$opt/config"
  cp "$FROM/package.json" "$FROM/package-lock.json" "$opt/"
  local doc
  for doc in README.md LICENSE; do
    if [[ -f $FROM/$doc ]]; then cp "$FROM/$doc" "$opt/"; fi
  done
  if ((NPM)); then
    say "Installing production dependencies (npm ci --omit=dev) ..."
    (cd "$opt" && npm ci --omit=dev --no-audit --no-fund)
    # Without koffi the daemon can only notify systemd through the systemd-notify command, whose messages
    # NotifyAccess=main ignores: the service would never report ready and be stopped after the timeout.
    if ! (cd "$opt" && "$NODE_BIN" -e 'require("koffi")') >/dev/null 2>&1; then
      say "WARNING: koffi did not install in $opt; systemd will not see READY=1 with NotifyAccess=main." \
        "Fix the npm install, or add NotifyAccess=all in a drop-in (systemctl edit $UNIT)."
    fi
  else
    say "  skipped npm ci --omit=dev in $opt (--no-npm)"
  fi
}

create_user() {
  say "User: $SERVICE_USER (groups dialout, gpio)"
  if ((!LIVE)); then
    say "  would run: groupadd --system dialout; groupadd --system gpio (each only if missing)"
    say "  would run: useradd --system --user-group --no-create-home --home-dir /nonexistent" \
      "--shell /usr/sbin/nologin --groups dialout,gpio $SERVICE_USER (or usermod --append if it exists)"
    return
  fi
  local group
  for group in dialout gpio; do
    getent group "$group" >/dev/null || groupadd --system "$group"
  done
  if getent passwd "$SERVICE_USER" >/dev/null; then
    usermod --append --groups dialout,gpio "$SERVICE_USER"
  else
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --groups dialout,gpio "$SERVICE_USER"
  fi
}

install_config() {
  local dir=$PREFIX/etc/serial-gateway
  local target=$dir/config.yaml
  [[ -f $FROM/config/default.yaml ]] || die "$FROM/config/default.yaml is missing"
  mkdir -p "$dir"
  if [[ -e $target ]]; then
    say "Config: kept your $target (the new defaults are in $PREFIX/opt/serial-gateway/config/default.yaml)"
    return
  fi
  if ((LIVE)); then
    install -m 0640 -o root -g "$SERVICE_USER" "$FROM/config/default.yaml" "$target"
  else
    install -m 0644 "$FROM/config/default.yaml" "$target"
  fi
  say "Config: created $target from config/default.yaml; edit it, then: systemctl reload $UNIT"
}

install_unit() {
  local source=$FROM/systemd/$UNIT.service
  local target=$PREFIX/etc/systemd/system/$UNIT.service
  [[ -f $source ]] || die "$source is missing"
  mkdir -p "$(dirname "$target")"
  local line found=0 tmp
  tmp=$(mktemp "$target.XXXXXX")
  # Plain string surgery rather than sed, so no character in the node path needs escaping.
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == "ExecStart=/usr/bin/node "* ]]; then
      line="ExecStart=$NODE_BIN ${line#"ExecStart=/usr/bin/node "}"
      found=1
    fi
    printf '%s\n' "$line"
  done <"$source" >"$tmp"
  if ((found == 0)); then
    rm -f "$tmp"
    die "$source has no 'ExecStart=/usr/bin/node ' line to point at $NODE_BIN"
  fi
  chmod 0644 "$tmp"
  mv -f "$tmp" "$target"
  say "Unit: $target (ExecStart uses $NODE_BIN)"
}

install_udev_rule() {
  local target=$PREFIX/etc/udev/rules.d/99-$UNIT.rules
  mkdir -p "$(dirname "$target")"
  install -m 0644 "$FROM/deploy/99-$UNIT.rules" "$target"
  say "udev: $target (edit the vendor/product IDs for /dev/labbox)"
  run udevadm control --reload-rules
  run udevadm trigger --action=add --subsystem-match=tty --subsystem-match=leds --subsystem-match=gpio
}

install_avahi() {
  if ((LIVE)) && [[ ! -d /etc/avahi ]]; then
    say "Avahi: not installed, so $(hostname).local will not be announced (sudo apt-get install avahi-daemon)"
    return
  fi
  local target=$PREFIX/etc/avahi/services/$UNIT.service
  mkdir -p "$(dirname "$target")"
  install -m 0644 "$FROM/deploy/$UNIT.avahi.service" "$target"
  say "Avahi: $target (_serial-gateway._tcp and _telnet._tcp on port $DEFAULT_PORT)"
}

start_service() {
  run systemctl daemon-reload
  if ((START == 0)); then
    run systemctl enable "$UNIT"
    say "Service: enabled, not started (--no-start); start it with: sudo systemctl start $UNIT"
    return
  fi
  if ((LIVE)) && systemctl is-active --quiet "$UNIT"; then
    say "Service: upgrading the running service (restart)"
    run systemctl enable "$UNIT"
    run systemctl restart "$UNIT"
  else
    run systemctl enable --now "$UNIT"
  fi
  if ((LIVE)) && ! systemctl is-active --quiet "$UNIT"; then
    say "Service: NOT running. See: systemctl status $UNIT; journalctl -u $UNIT -e"
  fi
}

print_next_steps() {
  local host=raspberrypi
  if ((LIVE)); then host=$(hostname); fi
  cat <<EOF

serial-gateway is installed. Clients on the LAN connect to ${host}.local:${DEFAULT_PORT}
(the port of the first TCP listener in /etc/serial-gateway/config.yaml), for example:
  nc ${host}.local ${DEFAULT_PORT}
  telnet ${host}.local ${DEFAULT_PORT}
Follow the log:      journalctl -u ${UNIT} -f
After config edits:  sudo systemctl reload ${UNIT}
Status LEDs need a dtoverlay line in /boot/firmware/config.txt and a reboot: see the README section
"Status LEDs".
EOF
}

main() {
  if [[ -z $FROM ]]; then
    FROM=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
  fi
  [[ -d $FROM ]] || die "--from $FROM is not a directory"
  FROM=$(cd "$FROM" && pwd -P)
  ((LIVE)) || say "Installing into $ROOT (not the live system: users, udev and systemd are left alone)"
  check_node
  build_if_needed
  install_program
  create_user
  install_config
  install_unit
  install_udev_rule
  install_avahi
  start_service
  print_next_steps
}

main
