#!/usr/bin/env bash
# Installs or upgrades serial-gateway from a clone of the repository, on a Raspberry Pi or any systemd
# Linux. Run it again to upgrade in place: your /etc/serial-gateway/config.yaml is never overwritten.
set -euo pipefail
umask 022

readonly UNIT=serial-gateway
readonly SERVICE_USER=serial-gateway
readonly MIN_NODE_MAJOR=20

usage() {
  cat <<'EOF'
Usage: sudo deploy/install.sh [options]

Installs serial-gateway as a systemd service:
  /opt/serial-gateway/                      the built program and its production dependencies
  /usr/local/bin/serial-gateway             the command (serial-gateway doctor, --check-config, ...)
  /etc/serial-gateway/config.yaml           your config (created once from config/default.yaml, then kept)
  /etc/systemd/system/serial-gateway.service
  /etc/udev/rules.d/99-serial-gateway.rules /dev/labbox link and LED permissions
  /etc/avahi/services/serial-gateway.service  announces the config's listeners on the LAN (if Avahi is there)
and creates the system user serial-gateway (groups dialout and gpio). Every step can be run again: a second
run upgrades in place. A missing or stopped udevd, Avahi or systemd is a warning, not a failure.

Options:
  --root DIR    install into DIR instead of / (for tests and images); skips useradd, udevadm, systemctl
                and prints what it would have run
  --from DIR    the clone to install from (default: the clone this script is in)
  --node PATH   the node binary the service runs (default: the one on PATH)
  --no-start    install and enable, but do not start or restart the service
  --no-npm      do not run npm (neither the build nor `npm ci --omit=dev` in /opt)
  --leds        also write the dtoverlay=gpio-led lines for the LEDs enabled in the config into the boot
                config (/boot/firmware/config.txt, or /boot/config.txt on older images), once, keeping a
                backup; the LEDs appear after a reboot
  -h, --help    this text
EOF
}

say() { printf '%s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}
warn() { printf 'WARNING: %s\n' "$*"; }

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
LEDS=0
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
    --leds) LEDS=1; shift ;;
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
  rm -rf "$opt/dist" "$opt/config" "$opt/web"
  mkdir -p "$opt/dist"
  cp -R "$FROM/dist/src" "$opt/dist/src"
  cp -R "$FROM/config" "$opt/config"
  # The browser console and dashboard, served from memory by web: listeners (nothing is fetched from elsewhere).
  if [[ -d $FROM/web ]]; then cp -R "$FROM/web" "$opt/web"; fi
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

install_command() {
  local target=$PREFIX/usr/local/bin/serial-gateway
  mkdir -p "$(dirname "$target")"
  # The node the service runs, not whichever `env node` finds under sudo's PATH.
  printf '#!/bin/sh\n# Installed by serial-gateway deploy/install.sh.\nexec %q /opt/serial-gateway/dist/src/main.js "$@"\n' \
    "$NODE_BIN" >"$target.tmp"
  chmod 0755 "$target.tmp"
  mv -f "$target.tmp" "$target"
  say "Command: $target (try: sudo serial-gateway doctor)"
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
  local trigger=(udevadm trigger --action=add --subsystem-match=tty --subsystem-match=leds --subsystem-match=gpio)
  if ((!LIVE)); then
    run udevadm control --reload-rules
    run "${trigger[@]}"
  elif ! command -v udevadm >/dev/null 2>&1; then
    warn "udevadm is not installed, so the rule is not applied (sudo apt-get install udev)"
  elif ! udevadm control --reload-rules 2>/dev/null; then
    # A container, or an SD-card image built in a chroot: udevd reads the rule when it next starts.
    warn "udevd is not running here, so the rule applies from the next boot. On a running system:" \
      "sudo udevadm control --reload-rules && sudo ${trigger[*]}"
  else
    "${trigger[@]}" || warn "udevadm trigger failed; the rule applies when the dongle is next plugged in"
  fi
}

# Reads the installed config with the program's own loader (src/deploy/install-helper.ts), run from the
# clone, which has the dependencies even when /opt does not (--no-npm).
# One run writes all three texts (avahi, overlays, connect) into $DERIVED; later steps only read them.
DERIVED=
derive_from_config() {
  local machine=(--hostname raspberrypi --no-addresses)
  if ((LIVE)); then machine=(--hostname "$(hostname)"); fi
  DERIVED=$(mktemp -d)
  trap 'rm -rf "$DERIVED"' EXIT
  if ! "$NODE_BIN" "$FROM/dist/src/deploy/install-helper.js" all --out "$DERIVED" \
    --config "$PREFIX/etc/serial-gateway/config.yaml" "${machine[@]}"; then
    rm -rf "$DERIVED"
    DERIVED=
  fi
}

# The text derived from the config for $1 (avahi, overlays or connect); fails if the config could not be read.
helper() {
  [[ -n $DERIVED && -f $DERIVED/$1 ]] && cat "$DERIVED/$1"
}

install_avahi() {
  if ((LIVE)) && [[ ! -d /etc/avahi ]]; then
    warn "Avahi is not installed, so $(hostname).local and the listeners are not announced" \
      "(sudo apt-get install avahi-daemon, then run this script again)"
    return
  fi
  local target=$PREFIX/etc/avahi/services/$UNIT.service xml
  if ! xml=$(helper avahi); then
    warn "could not read the listeners from $PREFIX/etc/serial-gateway/config.yaml (above), so $target is" \
      "not written. Fix the config (serial-gateway --check-config), then run this script again"
    return
  fi
  if [[ -z $xml ]]; then
    rm -f "$target"
    say "Avahi: nothing to announce (every listener is bound to this machine only)"
    return
  fi
  mkdir -p "$(dirname "$target")"
  printf '%s\n' "$xml" >"$target.tmp"
  chmod 0644 "$target.tmp"
  mv -f "$target.tmp" "$target"
  local services
  services=$(sed -n -e 's|.*<type>\(.*\)</type>.*|\1|p' -e 's|.*<port>\(.*\)</port>.*|\1|p' "$target" | paste -d' ' - - | paste -sd, -)
  say "Avahi: $target (${services//,/, })"
  if ((LIVE)) && ! systemctl is-active --quiet avahi-daemon 2>/dev/null; then
    warn "avahi-daemon is not running, so nothing is announced yet: sudo systemctl enable --now avahi-daemon"
  fi
}

install_led_overlays() {
  ((LEDS)) || return 0
  local boot='' candidate
  for candidate in "$PREFIX/boot/firmware/config.txt" "$PREFIX/boot/config.txt"; do
    if [[ -f $candidate ]]; then boot=$candidate; break; fi
  done
  if [[ -z $boot ]]; then
    warn "--leds: neither $PREFIX/boot/firmware/config.txt nor $PREFIX/boot/config.txt exists (not a Raspberry" \
      "Pi?); nothing written. The lines are in the README section \"Status LEDs\""
    return
  fi
  local lines
  if ! lines=$(helper overlays); then
    warn "--leds: could not read the LEDs from the config (above); $boot is unchanged"
    return
  fi
  if [[ -z $lines ]]; then
    say "LEDs: no LED is enabled and wired in the config (leds.enabled: true and a pin), so $boot is unchanged"
    return
  fi
  local begin='# serial-gateway status LEDs (written by deploy/install.sh --leds)'
  local end='# end of serial-gateway status LEDs'
  # [all]: the lines apply to every board, whatever conditional section the file ends in.
  local block current
  block=$(printf '%s\n[all]\n%s\n%s' "$begin" "$lines" "$end")
  current=$(awk -v b="$begin" -v e="$end" '$0==b{on=1} on{print} $0==e{on=0}' "$boot")
  if [[ $current == "$block" ]]; then
    say "LEDs: $boot already has these lines; nothing changed"
    return
  fi
  cp -p "$boot" "$boot.serial-gateway.bak"
  {
    awk -v b="$begin" -v e="$end" '$0==b{on=1} !on{print} $0==e{on=0}' "$boot.serial-gateway.bak"
    printf '%s\n' "$block"
  } >"$boot.tmp"
  mv -f "$boot.tmp" "$boot"
  say "LEDs: wrote these lines to $boot (the previous file is $boot.serial-gateway.bak):"
  printf '  %s\n' $lines
  say "REBOOT NEEDED: the LEDs appear in /sys/class/leds after a reboot (sudo reboot)."
}

start_service() {
  if ((LIVE)) && [[ ! -d /run/systemd/system ]]; then
    # A chroot or an image being built: enabling works offline, starting needs a running systemd.
    systemctl enable "$UNIT" || warn "systemctl enable $UNIT failed; once booted: sudo systemctl enable --now $UNIT"
    warn "systemd is not running here, so the service is enabled but not started; it starts at the next boot"
    return
  fi
  run systemctl daemon-reload
  if ((START == 0)); then
    run systemctl enable "$UNIT"
    say "Service: enabled, not started (--no-start); start it with: sudo systemctl start $UNIT"
    return
  fi
  # A service that fails to start is reported below, not a reason to stop half-way: the files are in place.
  if ((LIVE)) && systemctl is-active --quiet "$UNIT"; then
    say "Service: upgrading the running service (restart)"
    run systemctl enable "$UNIT"
    run systemctl restart "$UNIT" || true
  else
    run systemctl enable "$UNIT"
    run systemctl start "$UNIT" || true
  fi
  if ((LIVE)) && ! systemctl is-active --quiet "$UNIT"; then
    warn "the service is NOT running. See: sudo serial-gateway doctor; journalctl -u $UNIT -e"
  fi
}

print_next_steps() {
  cat <<EOF

Follow the log:      journalctl -u ${UNIT} -f
After config edits:  sudo systemctl reload ${UNIT}
If it does not work: sudo serial-gateway doctor
EOF
  ((LEDS)) || say "Status LEDs need dtoverlay lines in the boot config and a reboot: run this script with --leds."
  local lines
  if lines=$(helper connect); then
    say ""
    say "serial-gateway is installed. Students connect with (the listeners in /etc/serial-gateway/config.yaml):"
    printf '%s\n' "$lines"
  else
    say "serial-gateway is installed, but its config is invalid (above): fix it, then: sudo systemctl restart $UNIT"
  fi
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
  install_command
  create_user
  install_config
  derive_from_config
  install_unit
  install_udev_rule
  install_avahi
  install_led_overlays
  start_service
  print_next_steps
}

main
