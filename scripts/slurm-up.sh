#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine for NMLab's Slurm tests (docs/slurm.md).
# Idempotent: a cluster this script already started is left running and reported ready.
#
# Needs root and Debian's packages `slurmctld slurmd slurm-client munge` (Slurm 22.05); .ci/run
# installs them. Nothing of the system's Slurm set-up is touched: the configuration, state,
# spool, logs and pid files live in $NMLAB_SLURM_STATE (default /var/tmp/nmlab-slurm), and
# clients find the cluster through SLURM_CONF, which the last line of output names:
#
#   eval "$(scripts/slurm-up.sh | tail -n 1)"   # export SLURM_CONF=…
#
# Accounting is off (accounting_storage/none), so `sacct` has nothing to say here; NMLab tells
# a live job from a lost one with `squeue` and `scontrol show job` (which remembers a finished
# job for MinJobAge seconds) together with the project's run files.
# Exit codes: 0 ready; 2 not installed or not root (the caller skips); 1 it would not start.
set -euo pipefail

STATE="${NMLAB_SLURM_STATE:-/var/tmp/nmlab-slurm}"
CONF="$STATE/slurm.conf"
say() { printf 'slurm-up: %s\n' "$*" >&2; }

for bin in munged slurmctld slurmd sinfo sbatch squeue scontrol scancel; do
  command -v "$bin" >/dev/null 2>&1 || { say "$bin is not installed (apt-get install slurmctld slurmd slurm-client munge)"; exit 2; }
done
[ "$(id -u)" = 0 ] || { say "must run as root (slurmctld and slurmd run as root here)"; exit 2; }

host="$(hostname -s)"
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---- munge: a key owned by munge, mode 400; munged as the munge user ------------------------
if [ ! -s /etc/munge/munge.key ]; then
  say "creating /etc/munge/munge.key"
  install -d -o munge -g munge -m 700 /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/log/munge /var/lib/munge
if ! pgrep -u munge -x munged >/dev/null 2>&1; then
  say "starting munged"
  runuser -u munge -- munged
fi
for _ in $(seq 1 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
munge -n | unmunge >/dev/null || { say "munge does not work (see /var/log/munge/munged.log)"; exit 1; }

# ---- slurm.conf (rewritten only while the daemons are down) ---------------------------------
mkdir -p "$STATE/ctld" "$STATE/spool"
if ! alive "$STATE/slurmctld.pid"; then
  cpus="$(nproc)"
  # 90 % of the memory, in MB: slurmd drains a node that reports less than RealMemory.
  mem="$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"
  cat >"$CONF" <<EOF
# Written by NMLab's scripts/slurm-up.sh: a one-node cluster for tests.
ClusterName=nmlab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# Step credentials live 15 s, not 120: a requeued job waits this long before it may start
# again (earlier, slurmd kills it: "Job credential revoked"), and tests do not wait 2 minutes.
AuthInfo=cred_expire=15
SlurmctldPort=${NMLAB_SLURMCTLD_PORT:-6817}
SlurmdPort=${NMLAB_SLURMD_PORT:-6818}
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# A timed-out job gets SIGTERM, then SIGKILL this many seconds later.
KillWait=10
# Finished jobs stay visible to scontrol for this long.
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  say "starting slurmctld ($CONF)"
  slurmctld -f "$CONF"
fi
export SLURM_CONF="$CONF"
if ! alive "$STATE/slurmd.pid"; then
  say "starting slurmd"
  slurmd -f "$CONF"
fi

# ---- wait until the node takes jobs ----------------------------------------------------------
state=""
for i in $(seq 1 100); do
  state="$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1 || true)"
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    down* | drain* | fail*) [ "$i" = 20 ] && scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.2
done
case "$state" in
  idle | mixed | allocated | completing) ;;
  *) say "node $host is '${state:-unreachable}' after 20 s; see $STATE/slurmctld.log and $STATE/slurmd.log"; exit 1 ;;
esac
say "ready: node $host ($state)"
echo "export SLURM_CONF=$CONF"
