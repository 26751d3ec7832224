#!/bin/bash
# real-systemd.sh — boot a REAL systemd (PID 1) inside private pid/mount/cgroup/uts/ipc
# namespaces on top of a throw-away overlay of the host root, install one unit file,
# start it, show status + journal, then tear everything down.
# (A copy of the project's shared real-systemd harness, kept in the repository so the deployment test
#  runs from any clone. Changed here: UNIT_FILE may be "-" for none, when the commands after "--"
#  install and start the service themselves, e.g. with deploy/install.sh.)
#
# usage: real-systemd.sh UNIT_FILE APP_DIR [-- 'shell commands run inside after start']
#        real-systemd.sh --selftest   (Type=notify + watchdog + hardening demo, PASS/FAIL)
#   UNIT_FILE  path to a .service file (installed as /etc/systemd/system/<basename>)
#   APP_DIR    folder bind-mounted at /opt/app inside the container (read-only unless APP_RW=1)
#   after "--": one string run with bash inside the container (PID/mount ns of systemd)
#               after `systemctl start`, before the final status/journal dump
# env: PRE='shell commands' run inside before daemon-reload/start (e.g. create fixtures),
#      BOOT_TIMEOUT (s, default 60), RUN_TIMEOUT (s for the extra commands, default 300),
#      KEEP=1 keeps the scratch dir (console log) for inspection, PRIVATE_NET=1 adds --net.
# Needs: root with full caps, unshare/nsenter/script (util-linux), systemd installed on host,
#        overlayfs, a cgroup2 mount (pure v2 at /sys/fs/cgroup or hybrid .../unified).
set -euo pipefail

if [ "${1:-}" = --selftest ]; then
  D=$(mktemp -d /tmp/real-systemd-selftest.XXXXXX); trap 'rm -rf "$D"' EXIT
  mkdir "$D/app"
  cat >"$D/app/run.sh" <<'APP'
#!/bin/bash
stop=0
trap 'stop=1; echo "got USR1: stopping watchdog pings"' USR1
trap 'echo "got HUP: reloading"; systemd-notify --status=reloaded' HUP
echo "start pid=$$ WATCHDOG_USEC=${WATCHDOG_USEC:-unset} $(grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -s '\t\n' '  ')uid_map=$(tr -s ' ' </proc/self/uid_map)"
touch /etc/probe 2>/dev/null && echo "PROBE /etc writable" || echo "PROBE /etc read-only"
(exec 3</dev/rsd-tun) 2>/dev/null && echo "PROBE tun opened" || echo "PROBE tun denied"
systemd-notify --ready --status=running
while :; do [ $stop = 0 ] && systemd-notify WATCHDOG=1; sleep 1; done
APP
  chmod +x "$D/app/run.sh"
  cat >"$D/rsd-demo.service" <<'UNIT'
[Unit]
Description=real-systemd selftest (notify + watchdog + hardening)
[Service]
Type=notify
NotifyAccess=all
ExecStart=/opt/app/run.sh
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=3
Restart=on-failure
RestartSec=1
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
DevicePolicy=closed
DeviceAllow=/dev/null rw
SystemCallFilter=@system-service
RestrictNamespaces=yes
NoNewPrivileges=yes
PrivateUsers=yes
CapabilityBoundingSet=
UNIT
  T='U=rsd-demo.service; systemctl reload $U; sleep 1; P1=$(systemctl show -p MainPID --value $U)
systemctl kill --kill-who=main -s USR1 $U; echo "pings stopped at $(date +%T)"
for i in $(seq 1 15); do sleep 1; P=$(systemctl show -p MainPID --value $U); N=$(systemctl show -p NRestarts --value $U)
  [ "$N" -ge 1 ] && [ "$P" != 0 ] && [ "$P" != "$P1" ] && systemctl -q is-active $U && break; done
echo "RESULT NRestarts=$N MainPID $P1 -> $P after ${i}s"
printf "control DevicePolicy=auto: "; systemd-run -q --wait -P -p DevicePolicy=auto /bin/sh -c "exec 3</dev/rsd-tun && echo tun-opened" 2>&1 | tail -1'
  out=$(PRE='mknod -m 666 /dev/rsd-tun c 10 200' bash "$0" "$D/rsd-demo.service" "$D/app" -- "$T" 2>&1) || true
  echo "$out"
  ok=1
  for pat in "Watchdog timeout (limit 3s)" "Failed with result 'watchdog'" "RESULT NRestarts=1" "PROBE /etc read-only" \
             "PROBE tun denied" "Seccomp: 2" "got HUP: reloading" "Active: active (running)" "tun-opened"; do
    grep -qF "$pat" <<<"$out" || { echo "selftest: missing '$pat'"; ok=0; }
  done
  if [ $ok = 1 ]; then echo "SELFTEST PASS"; exit 0; else echo "SELFTEST FAIL"; exit 1; fi
fi
[ $# -ge 2 ] || { sed -n '2,/^set /{/^#/p}' "$0"; exit 2; }
if [ "$1" = - ]; then UNIT_FILE=-; UNIT=-; else UNIT_FILE=$(realpath "$1"); UNIT=$(basename "$UNIT_FILE"); fi
APP_DIR=$(realpath "$2"); shift 2
EXTRA=""
if [ "${1:-}" = "--" ]; then shift; EXTRA="$*"; fi
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
[ "$UNIT_FILE" = - ] || [ -f "$UNIT_FILE" ] || { echo "no unit file $UNIT_FILE" >&2; exit 2; }
[ -d "$APP_DIR" ] || { echo "no app dir $APP_DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "must be root" >&2; exit 2; }

# host cgroup2 hierarchy (pure unified or hybrid)
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then CG2=/sys/fs/cgroup
elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then CG2=/sys/fs/cgroup/unified
else echo "no cgroup2 mount found" >&2; exit 3; fi

S=$(mktemp -d /tmp/real-systemd.XXXXXX)
CG="$CG2/real-systemd.${S##*.}"
SPID=""   # pid of `script` wrapper (host pid ns)
SDPID=""  # pid of systemd (host view)
INPID=""  # pid of the running nsenter snippet (host view)

log() { printf '[real-systemd %(%T)T] %s\n' -1 "$*" >&2; }

KILLED=()
killtree() { # SIGKILL a process and its descendants, by pid
  local p=$1 c
  for c in $(cat /proc/$p/task/*/children 2>/dev/null); do killtree "$c"; done
  kill -KILL "$p" 2>/dev/null && KILLED+=("$p") || true
}

rmcg() { # depth-first rmdir of a cgroup tree
  local d=$1 c
  [ -d "$d" ] || return 0
  for c in "$d"/*/; do [ -d "$c" ] && rmcg "${c%/}"; done
  rmdir "$d" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap '' INT TERM; trap - EXIT   # no second interrupt mid-cleanup
  set +e
  if [ -n "$INPID" ]; then  # a still-running PRE/extra snippet (interrupt): kill it and let it be
    killtree "$INPID"       # reaped first, else systemd-shutdown waits 10 s for it
    for _ in $(seq 1 30); do alive=0; for k in "${KILLED[@]}"; do kill -0 "$k" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break; sleep 0.1; done
  fi
  if [ -n "$SDPID" ] && kill -0 "$SDPID" 2>/dev/null; then
    log "powering off container systemd (pid $SDPID)"
    kill -s RTMIN+4 "$SDPID"   # = systemctl poweroff, handled by systemd PID 1
    for _ in $(seq 1 100); do kill -0 "$SDPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SDPID" 2>/dev/null; then log "poweroff timed out, SIGKILL pid-ns init"; kill -KILL "$SDPID"; fi
  fi
  if [ -n "$SPID" ]; then
    for _ in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SPID" 2>/dev/null && kill -KILL "$SPID"
    wait "$SPID" 2>/dev/null
  fi
  # anything left in our cgroup (should be nothing once the pid ns init died)
  if [ -d "$CG" ]; then
    for p in $(cat "$CG"/cgroup.procs $(find "$CG" -name cgroup.procs) 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    sleep 0.2; rmcg "$CG"
  fi
  [ -d "$CG" ] && log "WARNING: cgroup $CG left behind"
  if [ "${KEEP:-0}" = 1 ]; then log "kept $S (console.log)"; else rm -rf "$S"; fi
  exit $rc
}
trap cleanup EXIT
trap 'trap "" INT TERM; log "interrupted"; exit 130' INT TERM

mkdir -p "$S/t" "$S/root"
[ "$UNIT_FILE" = - ] || cp "$UNIT_FILE" "$S/unit"

# ---------------- inner stage: runs as PID 1 of the new pid namespace ----------------
cat >"$S/inner.sh" <<'INNER'
#!/bin/bash
set -euo pipefail
S=$1; APP=$2; UNIT=$3; APP_RW=$4
R=$S/root
mount --make-rprivate /
mount -t tmpfs -o mode=755 rsd-scratch "$S/t"
mkdir -p "$S/t/upper" "$S/t/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$S/t/upper,workdir=$S/t/work" "$R"
# API filesystems (systemd would mount missing ones itself, but we want a private /dev)
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"      # ro /sys => udev stays off
mount -t cgroup2 -o nsdelegate cgroup2 "$R/sys/fs/cgroup" 2>/dev/null \
  || mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"              # cgroupns root = our sub-cgroup
mount -t tmpfs -o mode=755,nosuid,size=4m rsd-dev "$R/dev"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $n; mknod -m 666 "$R/dev/$1" c "$2" "$3"
done
mkdir -p "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"; ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
touch "$R/dev/console"; mount --bind "$(tty)" "$R/dev/console"   # pty from script(1)
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
# the app
mkdir -p "$R/opt/app"
if [ "$APP_RW" = 1 ]; then mount --bind "$APP" "$R/opt/app"
else mount --bind "$APP" "$R/opt/app"; mount -o remount,bind,ro "$R/opt/app"; fi
# units: minimal boot target, mask host services/timers that would start by default
E=$R/etc/systemd/system
[ "$UNIT" = - ] || cp "$S/unit" "$E/$UNIT"
cat >"$E/rsd.target" <<EOF
[Unit]
Description=real-systemd minimal boot target
Requires=basic.target
After=basic.target
AllowIsolate=yes
EOF
# host enablement symlinks under /etc are dropped in the overlay (host untouched)
rm -rf "$E"/*.wants
for u in timers.target systemd-timesyncd.service getty.target console-getty.service \
         remote-fs.target systemd-networkd.service systemd-resolved.service; do
  rm -f "$E/$u"; ln -s /dev/null "$E/$u"
done

hostname real-systemd; echo real-systemd >"$R/etc/hostname"
cd "$R"; mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot; rmdir /.oldroot
exec env -i container=other TERM=vt220 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  /lib/systemd/systemd --unit=rsd.target --show-status=0 \
  systemd.unified_cgroup_hierarchy=1
INNER
chmod +x "$S/inner.sh"

mkdir "$CG"
log "booting systemd (scratch $S, cgroup $CG)"
T0=$(date +%s%N)
NETFLAG=""; [ "${PRIVATE_NET:-0}" = 1 ] && NETFLAG=--net
(
  echo $BASHPID >"$CG/cgroup.procs"
  exec setsid script -qefc "unshare --mount --pid --fork --cgroup --uts --ipc $NETFLAG --propagation private $S/inner.sh $S $APP_DIR $UNIT ${APP_RW:-0}" "$S/console.log" </dev/null >/dev/null 2>&1
) &
SPID=$!

# find systemd: the process in our cgroup whose comm is systemd
for _ in $(seq 1 $((BOOT_TIMEOUT * 10))); do
  for p in $(cat "$CG/cgroup.procs" 2>/dev/null; find "$CG" -mindepth 2 -name cgroup.procs -exec cat {} + 2>/dev/null); do
    if [ "$(cat /proc/$p/comm 2>/dev/null)" = systemd ] && grep -q '^NSpid:.*[[:space:]]1$' /proc/$p/status 2>/dev/null; then SDPID=$p; break 2; fi
  done
  kill -0 "$SPID" 2>/dev/null || { log "container died during setup:"; cat "$S/console.log" >&2; exit 4; }
  sleep 0.1
done
[ -n "$SDPID" ] || { log "systemd never appeared"; cat "$S/console.log" >&2; exit 4; }
# run a bash snippet inside (background + wait, so INT/TERM traps fire immediately)
IN() { local r=0; timeout "${2:-30}" nsenter -t "$SDPID" -a -r -w /bin/bash -c "$1" & INPID=$!
       wait $INPID || r=$?; INPID=""; return $r; }

st=""
for _ in $(seq 1 $((BOOT_TIMEOUT * 5))); do
  st=$(IN 'systemctl is-system-running 2>/dev/null' 5 || true)
  case "$st" in running|degraded) break;; esac
  kill -0 "$SDPID" 2>/dev/null || { log "systemd exited during boot:"; cat "$S/console.log" >&2; exit 5; }
  sleep 0.2
done
log "system state: ${st:-unknown} after $(( ($(date +%s%N) - T0) / 1000000 )) ms (systemd pid $SDPID on host)"
[ "$st" = degraded ] && IN 'systemctl --failed --no-pager' || true

rc=0
if [ -n "${PRE:-}" ]; then log "running PRE commands inside"; IN "$PRE" "$RUN_TIMEOUT" || log "PRE rc=$?"; fi
if [ "$UNIT" != - ]; then
  log "systemctl daemon-reload; systemctl start $UNIT"
  IN "systemctl daemon-reload && systemctl start '$UNIT'" 120 || { rc=$?; log "start failed rc=$rc"; }
fi
if [ -n "$EXTRA" ]; then
  log "running extra commands inside"
  IN "$EXTRA" "$RUN_TIMEOUT" || { r=$?; log "extra commands rc=$r"; [ $rc = 0 ] && rc=$r; }
fi
[ "$UNIT" = - ] && exit $rc
IN "systemctl -q is-failed '$UNIT'" && { log "$UNIT is in failed state"; [ $rc = 0 ] && rc=6; }
log "systemctl status $UNIT"
IN "systemctl status --no-pager -l '$UNIT'" || true
log "journalctl -u $UNIT -n 50"
IN "journalctl --no-pager -u '$UNIT' -n 50" || true
exit $rc
