#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this machine, for testing scripts/slurm/submit.sh
# (scripts/slurm/test.sh uses it). Needs root and Debian's packages slurm-wlm and munge
# (installed with apt-get when missing). Not for production use: SlurmUser=root, no accounting,
# everything on the loopback address.
#
#   cluster.sh start    install if needed, start munged, slurmctld and slurmd, wait until the node is idle
#   cluster.sh stop     cancel all jobs, stop the daemons this script started
#   cluster.sh status   show the daemons and the node; exit 0 when all is up, 3 otherwise
#
# Environment:
#   AIRINFER_SLURM_DIR   state, spool, pid and log files (default /var/spool/slurm-airinfer)
#   AIRINFER_SLURM_WAIT  seconds to wait for the node to come up (default 60)
set -euo pipefail

usage() {
  # the comment block at the top of this file
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

DIR="${AIRINFER_SLURM_DIR:-/var/spool/slurm-airinfer}"
WAIT="${AIRINFER_SLURM_WAIT:-60}"
CONF=/etc/slurm/slurm.conf
MARKER="# written by airinfer scripts/slurm/cluster.sh"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge
MUNGE_PID="$MUNGE_RUN/munged.pid"
MUNGE_OURS="$DIR/munged.started-by-cluster.sh" # present when this script started munged
CTLD_PID="$DIR/slurmctld.pid"
SLURMD_PID="$DIR/slurmd.pid"
LOGDIR="$DIR/log"

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# pid from a pid file when that process is alive and is the named program, else nothing
live_pid() {
  local file=$1 name=$2 pid
  [ -r "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  echo "$pid"
}

# the last lines of every log that could explain a failure
show_logs() {
  local f
  for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" /var/log/munge/munged.log; do
    [ -r "$f" ] || continue
    echo "---- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (it installs packages and starts system daemons)"
}

# Step 1: the packages. slurm-wlm brings slurmctld, slurmd and the client commands; munge
# authenticates them to one another.
install_packages() {
  local missing=()
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    || missing+=(slurm-wlm)
  command -v munged >/dev/null || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  echo "cluster.sh: installing ${missing[*]} with apt-get" >&2
  # the package scripts try to start services; there is no init system to do it here, and we
  # start the daemons ourselves below
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# Step 2: munge. The key must exist, belong to munge and be readable by it alone; munged runs
# as the munge user with its socket and pid file in /run/munge.
start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0 # a munged already answers (ours from an earlier start, or the system's)
  fi
  if [ ! -s "$MUNGE_KEY" ]; then
    echo "cluster.sh: creating $MUNGE_KEY" >&2
    install -d -o munge -g munge -m 0700 "$(dirname "$MUNGE_KEY")"
    (umask 077 && dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none)
  fi
  chown munge:munge "$MUNGE_KEY"
  chmod 0400 "$MUNGE_KEY"
  install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged || { show_logs; die "munged did not start"; }
  touch "$MUNGE_OURS"
  local _
  for _ in $(seq 1 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  show_logs
  die "munged started but does not answer (munge -n | unmunge)"
}

# Step 3: slurm.conf. One node (this host, on 127.0.0.1 so nothing depends on name resolution),
# one default partition, consumable cores so that array tasks share the node, no accounting,
# no cgroups. Never overwrite a slurm.conf that this script did not write.
write_conf() {
  local host cpus hw mem topo=""
  host=$(hostname -s)
  cpus=$(nproc)
  hw=$(slurmd -C | head -n 1)
  mem=$(sed -nE 's/.*RealMemory=([0-9]+).*/\1/p' <<<"$hw")
  [ -n "$mem" ] || die "cannot read RealMemory from 'slurmd -C': $hw"
  mem=$((mem * 95 / 100)) # a bit under the hardware, or slurmd would drain the node
  # keep slurmd's view of sockets/cores/threads when it agrees with nproc, so that CR_Core counts
  # real cores; otherwise (a CPU-limited container) describe nproc plain CPUs
  if [ "$(sed -nE 's/.* CPUs=([0-9]+).*/\1/p' <<<"$hw")" = "$cpus" ]; then
    topo=$(grep -oE '(Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' <<<"$hw" | tr '\n' ' ')
  fi
  if [ -e "$CONF" ] && ! grep -qxF "$MARKER" "$CONF"; then
    die "$CONF exists and was not written by this script; move it away to use the test cluster"
  fi
  install -d -m 0755 "$(dirname "$CONF")" "$DIR" "$DIR/state" "$DIR/spool" "$LOGDIR"
  cat >"$CONF" <<EOF
$MARKER
ClusterName=airinfer-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# keep finished jobs visible to 'scontrol show job' for an hour (the default is 5 minutes)
MinJobAge=3600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus ${topo}RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

# the node's state as sinfo reports it (idle, mixed, down, drained, ...), or nothing
node_state() {
  sinfo -h -N -n "$(hostname -s)" -o '%T' 2>/dev/null | head -n 1 | tr -dc '[:lower:]'
}

# Step 4: the daemons, then a bounded wait until the node takes jobs.
start() {
  need_root "start"
  install_packages
  install -d -m 0755 "$DIR"
  start_munge
  if ! live_pid "$CTLD_PID" slurmctld >/dev/null; then
    write_conf
    # -c: start from a clean state (no jobs or node states left from an earlier test)
    slurmctld -c || { show_logs; die "slurmctld did not start"; }
  fi
  if ! live_pid "$SLURMD_PID" slurmd >/dev/null; then
    slurmd || { show_logs; die "slurmd did not start"; }
  fi
  local deadline=$((SECONDS + WAIT)) state="" resumed=0
  while [ $SECONDS -lt $deadline ]; do
    state=$(node_state)
    case "$state" in
      idle | mixed | allocated | completing)
        echo "cluster.sh: node $(hostname -s) is $state ($(nproc) CPUs); slurm.conf: $CONF, logs: $LOGDIR"
        return 0
        ;;
      drained | draining | down)
        # a node left down by an earlier run: put it back once
        if [ $resumed -eq 0 ]; then
          scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true
          resumed=1
        fi
        ;;
    esac
    sleep 0.5
  done
  echo "cluster.sh: the node is not idle after ${WAIT}s (state: '${state:-none}')" >&2
  sinfo -N -l >&2 || true
  show_logs
  exit 1
}

# stop one daemon given by its pid file: TERM, then KILL after 15 s
stop_daemon() {
  local file=$1 name=$2 pid _
  pid=$(live_pid "$file" "$name") || { rm -f "$file"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 75); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "cluster.sh: $name ($pid) ignored TERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  echo "cluster.sh: stopped $name ($pid)"
}

stop() {
  need_root "stop"
  # cancel whatever is queued or running, so that no job step outlives slurmd
  if live_pid "$CTLD_PID" slurmctld >/dev/null; then
    local jobs _
    jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      # shellcheck disable=SC2086 # one argument per job id
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 50); do
        [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break
        sleep 0.2
      done
    fi
  fi
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  # munged only when this script started it
  if [ -e "$MUNGE_OURS" ]; then
    stop_daemon "$MUNGE_PID" munged
    rm -f "$MUNGE_OURS"
  fi
}

status() {
  local ok=0 pid state
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "munged:    running$(pid=$(live_pid "$MUNGE_PID" munged) && echo " (pid $pid)")"
  else
    echo "munged:    not running"
    ok=3
  fi
  if pid=$(live_pid "$CTLD_PID" slurmctld); then echo "slurmctld: running (pid $pid)"; else
    echo "slurmctld: not running"
    ok=3
  fi
  if pid=$(live_pid "$SLURMD_PID" slurmd); then echo "slurmd:    running (pid $pid)"; else
    echo "slurmd:    not running"
    ok=3
  fi
  if [ $ok -eq 0 ]; then
    state=$(node_state)
    echo "node:      $(hostname -s) ${state:-unknown}"
    case "$state" in idle | mixed | allocated | completing) ;; *) ok=3 ;; esac
    squeue 2>/dev/null || true
  fi
  return $ok
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
