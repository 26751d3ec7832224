#!/usr/bin/env bash
# Run inside a real systemd (PID 1) by test/deploy/real-systemd.test.ts through test/support/real-systemd.sh,
# with a clone (built, production node_modules) at /opt/app. Installs serial-gateway with deploy/install.sh
# the way a person would and checks what an instructor would check. Prints one "ok - ..." or
# "not ok - ... : detail" line per check and "scenario complete" at the end; the test turns those into
# assertions. No network: the container has its own loopback only.
set -uo pipefail
export SYSTEMD_PAGER='' SYSTEMD_COLORS=0
unset NODE_OPTIONS # node inside runs the installed program, nothing of the test runner
U=serial-gateway
CONFIG=/etc/serial-gateway/config.yaml
APP=/opt/app
NODE=$(command -v node)

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; }
# check DESC COMMAND...: one line saying whether COMMAND succeeded.
check() {
  local desc=$1
  shift
  if "$@"; then ok "$desc"; else notok "$desc"; fi
}
# within SECONDS COMMAND...: COMMAND succeeds within SECONDS (polled every 0.2 s).
within() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS >= end)) && return 1
    sleep 0.2
  done
}
prop() { systemctl show -p "$1" --value "$U"; }
status_has() { [[ $(prop StatusText) == *"$1"* ]]; }
active() { systemctl -q is-active "$U"; }
# expect FD TEXT [SECONDS]: a line containing TEXT arrives on the client socket FD.
expect() {
  local fd=$1 text=$2 end=$((SECONDS + ${3:-5})) line
  while ((SECONDS < end)); do
    if IFS= read -r -t 1 -u "$fd" line; then
      [[ $line == *"$text"* ]] && return 0
    elif (($? < 128)); then
      return 1 # EOF: the connection closed
    fi
  done
  return 1
}
set_path() { sed -i -E "s|^(  path: ).*|\1$1|" "$CONFIG"; }
connect() { exec {FD}<>/dev/tcp/127.0.0.1/2323; }
ask_id() { printf 'id\r\n' >&"$FD" && expect "$FD" 6510500000; }
journal() { journalctl --no-pager -o cat -u "$U" "$@"; }

# --- 1. First install, as a new user would, on a machine where udevd is not running.
# The production dependencies come from the clone (npm ci --omit=dev needs the network, which this has not).
mkdir -p /opt/serial-gateway && cp -a "$APP/node_modules" /opt/serial-gateway/
# Test-only drop-in: a 3 s watchdog (the unit's 20 s would make the test wait 20 s).
mkdir -p /etc/systemd/system/$U.service.d
printf '[Service]\nWatchdogSec=3\n' >/etc/systemd/system/$U.service.d/50-test-watchdog.conf
out=$(bash "$APP/deploy/install.sh" --from "$APP" --no-npm 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# install: /'
check "install.sh exits 0 where udevd is not running (rc=$rc)" test $rc = 0
check "install.sh warns about udevd instead of stopping" grep -q 'WARNING: udevd is not running' <<<"$out"
check "install.sh ends with the nc/telnet lines for the real listener" grep -q "telnet $(hostname).local 2323" <<<"$out"
check "enabled" systemctl -q is-enabled "$U"
check "active with no dongle plugged in" within 10 active
check "STATUS= says the device is awaited" within 5 status_has 'device waiting: /dev/ttyUSB0: not present'
echo "# STATUS=$(prop StatusText)"

pid=$(prop MainPID)
uid=$(awk '/^Uid:/{print $2}' /proc/$pid/status)
gid=$(awk '/^Gid:/{print $2}' /proc/$pid/status)
groups=$(awk '/^Groups:/{$1=""; print}' /proc/$pid/status | xargs -n1 | sort -n | xargs)
want_groups=$(getent group serial-gateway dialout gpio | cut -d: -f3 | sort -n | xargs)
check "runs as serial-gateway (uid $uid)" test "$uid" = "$(id -u serial-gateway)"
check "primary group serial-gateway (gid $gid)" test "$gid" = "$(getent group serial-gateway | cut -d: -f3)"
check "exactly the groups serial-gateway, dialout and gpio ($groups)" test "$groups" = "$want_groups"

doc=$(serial-gateway doctor 2>&1)
rc=$?
printf '%s\n' "$doc" | sed 's/^/# doctor, no dongle: /'
check "doctor with no dongle: exit 1 (rc=$rc)" test $rc = 1
check "doctor says the device is not present, and the fix" grep -q '^FAIL device: /dev/ttyUSB0 is not present -> fix: plug in' <<<"$doc"
check "doctor: the listener, bound by the service" grep -q '^OK   tcp lab: listening on 0.0.0.0:2323' <<<"$doc"
check "doctor: the unit's state" grep -q '^OK   service: active (running), enabled, pid' <<<"$doc"

# --- 2. Reload: a config edit opens the device while a connected client stays connected.
connect
A=$FD
cp "$CONFIG" /run/config.before
set_path sim:labbox
systemctl reload "$U"
check "reload to sim:labbox opens the device" within 5 status_has 'device open'
echo "# STATUS=$(prop StatusText)"
check "the same PID after reload" test "$(prop MainPID)" = "$pid"
FD=$A
check "the client connected before the reload is still connected and served" ask_id
doc=$(serial-gateway doctor 2>&1)
rc=$?
printf '%s\n' "$doc" | sed 's/^/# doctor, healthy: /'
check "doctor on the healthy service: exit 0 (rc=$rc)" test $rc = 0
check "doctor: healthy" grep -q '^doctor: healthy$' <<<"$doc"

# --- 3. A broken file is rejected: the old config keeps running.
cp "$CONFIG" /run/config.good
printf 'serial: [\n' >"$CONFIG"
systemctl reload "$U"
check "STATUS= says the reload was rejected" within 5 status_has 'last reload rejected'
echo "# STATUS=$(prop StatusText)"
check "the old config still runs (device still open)" status_has 'device open'
rejected_at_err() { journal -p err | grep -A1 'reload rejected' | grep -q 'serial'; }
check "the journal has the rejection and its details at priority err" within 3 rejected_at_err
check "the client is still served after the rejected reload" ask_id
cp /run/config.good "$CONFIG"
systemctl reload "$U"
within 5 status_has 'device open' && ! status_has 'last reload rejected'

# --- 4. A hung daemon is killed by the watchdog, restarted, and serves again.
pid=$(prop MainPID)
restarts=$(prop NRestarts)
kill -STOP "$pid"
restarted() { [[ $(prop NRestarts) -gt $restarts && $(prop MainPID) != "$pid" && $(prop MainPID) != 0 ]] && active; }
t0=$SECONDS
check "SIGSTOP: the watchdog kills and restarts it" within 15 restarted
echo "# watchdog restart after $((SECONDS - t0)) s"
check "the journal says watchdog timeout" grep -q 'Watchdog timeout' < <(journalctl --no-pager -o cat -u "$U")
check "the restarted daemon opens the device" within 5 status_has 'device open'
within 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2323' 2>/dev/null
connect
check "the restarted daemon serves a new client" ask_id

# --- 5. systemctl stop: exit 0, clients told.
systemctl stop "$U"
check "systemctl stop: the daemon exited 0 ($(prop ExecMainCode)/$(prop ExecMainStatus))" test "$(prop ExecMainStatus)" = 0
check "the connected client was told the gateway is stopping" expect "$FD" 'the gateway is stopping'
exec {FD}>&-

# --- 6. A bad config at start: exit 78, no restart loop.
printf 'serial: [\n' >"$CONFIG"
systemctl start "$U" 2>/dev/null
sleep 4 # RestartSec=2: long enough for a restart to have happened, were there one
check "a bad config at start exits 78 ($(prop ExecMainStatus))" test "$(prop ExecMainStatus)" = 78
check "and is not restarted (NRestarts $(prop NRestarts), $(prop ActiveState))" \
  test "$(prop NRestarts)" = 0 -a "$(prop ActiveState)" = failed
check "the journal has why, at priority err" grep -q 'cannot start, the config is invalid' < <(journal -p err)
doc=$(serial-gateway doctor 2>&1)
rc=$?
printf '%s\n' "$doc" | sed 's/^/# doctor, exit 78: /'
check "doctor after exit 78: exit 1, the config and the service named" \
  bash -c '[[ $1 = 1 ]] && grep -q "^FAIL config: .* is invalid" <<<"$2" && grep -q "^FAIL service: failed .* it exited 78" <<<"$2"' _ $rc "$doc"
check "doctor shows the journal's err lines" grep -q '^INFO journal: err: .*cannot start, the config is invalid' <<<"$doc"
cp /run/config.good "$CONFIG"
systemctl reset-failed "$U"
systemctl start "$U"

# --- 7. install.sh again upgrades in place: config kept, service restarted.
echo '# an instructor edit' >>"$CONFIG"
cp "$CONFIG" /run/config.edited
pid=$(prop MainPID)
out=$(bash "$APP/deploy/install.sh" --from "$APP" --no-npm 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# upgrade: /'
check "install.sh again exits 0 (rc=$rc)" test $rc = 0
check "the upgrade keeps the config" cmp -s "$CONFIG" /run/config.edited
check "the upgrade says it kept the config" grep -q 'Config: kept' <<<"$out"
check "the upgrade restarts the running service" within 10 bash -c "[[ \$(systemctl show -p MainPID --value $U) != $pid ]] && systemctl -q is-active $U"

# --- 8. The live unit's exposure and the journal's priorities.
sec=$(systemd-analyze security --no-pager "$U" 2>&1 | sed -nE "s/.*Overall exposure level for $U.service: ([0-9.]+).*/\1/p")
check "systemd-analyze security of the live unit: $sec <= 2.0" awk -v s="$sec" 'BEGIN { exit !(s != "" && s <= 2.0) }'
warnings=$(journal -p warning)
printf '%s\n' "$warnings" | sed 's/^/# journal -p warning: /'
check "journalctl -p warning has the rejected reload" grep -q 'reload rejected' <<<"$warnings"
check "journalctl -p warning has no info lines (ready, reload applied, config, stopping)" \
  bash -c '! grep -Eq "serial-gateway ready|reload applied|config: /etc|^stopping" <<<"$1"' _ "$warnings"
check "journalctl -p info has them" grep -q 'reload applied' < <(journal -p info)

# --- 9. Hardening, by trial. A pty plays the dongle (root:dialout 0660, as udev leaves one); a folder under
# /srv plays /sys/class/leds (files root:gpio 0664, as the udev rule leaves them). Test-only drop-ins open
# exactly what the unit opens for the real paths.
node "$APP/dist/test/deploy/play-device.js" /run/sg-tty >/dev/null &
DEVICE=$!
LEDS=/srv/sg-sys
L=$LEDS/class/leds/serialgw-ready
mkdir -p $L
echo 0 >$L/brightness
echo 1 >$L/max_brightness
echo none >$L/trigger
chown root:gpio $L/brightness $L/trigger
chmod 0664 $L/brightness $L/trigger
cat >"$CONFIG" <<YAML
serial:
  path: /run/sg-tty
tcp:
  - name: lab
    host: 127.0.0.1
    port: 2323
udp: []
leds:
  enabled: true
  sysRoot: $LEDS
  ready:
    pin: 17
    backend: ledclass
YAML
within 5 test -e /run/sg-tty
DROPIN=/etc/systemd/system/$U.service.d/60-test-paths.conf
restart_with() {
  printf '[Service]\n%b' "$1" >$DROPIN
  echo 0 >$L/brightness
  systemctl daemon-reload
  systemctl restart "$U"
}
led_lit() { [[ $(cat $L/brightness) == 1 ]]; }
led_refused() { journal -p warning -n 20 | grep -q 'ready (BCM 17): ledclass: .*brightness not writable: EROFS'; }

# ProtectSystem=strict: a LED path outside ReadWritePaths= cannot be written.
restart_with ''
check "ProtectSystem=strict: a LED file outside ReadWritePaths= is refused (EROFS)" within 5 led_refused
journal -p warning -n 3 | sed 's/^/# journal -p warning, LED outside ReadWritePaths: /'
check "  ... and the LED stays dark" test "$(cat $L/brightness)" = 0
# With the path in ReadWritePaths= (the unit has -/sys/class/leds -/sys/class/gpio -/sys/devices/platform).
restart_with "ReadWritePaths=$LEDS\n"
check "ReadWritePaths=: the gpio-owned LED file is written (ready LED on)" within 5 led_lit
pid=$(prop MainPID)
me=$(id -u serial-gateway)
check "PrivateUsers=yes is in force (uid_map: $(xargs </proc/$pid/uid_map))" test "$(xargs </proc/$pid/uid_map)" = "0 0 1 $me $me 1"
check "PrivateUsers=yes: the dialout-owned device opens (a pty: DevicePolicy=closed allows char-pts)" \
  within 5 status_has 'device open /run/sg-tty'
connect
check "  ... and its lines reach a client" expect "$FD" tick
exec {FD}>&-
kill $DEVICE

# DevicePolicy=closed: a device outside DeviceAllow= is refused by the device cgroup (EPERM).
mknod -m 0660 /dev/sg-misc c 10 200 && chgrp dialout /dev/sg-misc
set_path /dev/sg-misc
systemctl reload "$U"
check "DevicePolicy=closed: a char 10:200 device outside DeviceAllow= is refused" within 5 status_has 'Operation not permitted'
echo "# STATUS=$(prop StatusText)"
doc=$(serial-gateway doctor 2>&1)
printf '%s\n' "$doc" | sed 's/^/# doctor, device outside DeviceAllow: /'
check "doctor names the device's driver missing from DeviceAllow=, and the drop-in" \
  grep -q '^FAIL device: /dev/sg-misc is a misc device, which the unit does not allow .* -> fix: .*DeviceAllow=char-misc rw' <<<"$doc"
restart_with "ReadWritePaths=$LEDS\nDeviceAllow=/dev/sg-misc rw\n"
not_refused() { local st; st=$(prop StatusText); [[ $st == *'device '* && $st != *'Operation not permitted'* ]]; }
check "  ... and not refused once a drop-in allows it" within 5 not_refused
echo "# STATUS=$(prop StatusText)"
rm -f $DROPIN
systemctl daemon-reload

# --- 10. uninstall keeps the config; --purge removes it.
out=$(bash "$APP/deploy/uninstall.sh" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/# uninstall: /'
check "uninstall.sh exits 0" test $rc = 0
check "uninstall stops the service" bash -c "! systemctl -q is-active $U"
check "uninstall removes the unit, the program and the command" \
  test ! -e /etc/systemd/system/$U.service -a ! -e /opt/serial-gateway -a ! -e /usr/local/bin/serial-gateway
cp "$CONFIG" /run/config.last
check "uninstall keeps the config" cmp -s "$CONFIG" /run/config.last
out=$(bash "$APP/deploy/uninstall.sh" --purge 2>&1)
check "uninstall.sh --purge exits 0" test $? = 0
check "--purge removes the config and the user" bash -c '! test -e /etc/serial-gateway && ! getent passwd serial-gateway >/dev/null'
echo "scenario complete"
