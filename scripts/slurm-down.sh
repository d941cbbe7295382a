#!/usr/bin/env bash
# Stop the one-node cluster scripts/slurm-up.sh started: cancel its jobs, stop slurmd and
# slurmctld by their pid files in $NMLAB_SLURM_STATE (default /var/tmp/nmlab-slurm). Idempotent;
# munged is left running unless --all is given (other munge clients may use it), and then only
# the munged this machine's munge user runs.
set -uo pipefail

STATE="${NMLAB_SLURM_STATE:-/var/tmp/nmlab-slurm}"
export SLURM_CONF="$STATE/slurm.conf"
say() { printf 'slurm-down: %s\n' "$*" >&2; }

stop() { # pid-file name
  local f="$STATE/$1.pid" pid
  [ -s "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $1 ($pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$f"
}

if [ -s "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
  scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  # Give slurmd a moment to signal the jobs' processes before it goes.
  for _ in $(seq 1 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
fi
stop slurmd
stop slurmctld
if [ "${1:-}" = "--all" ]; then
  pid="$(pgrep -u munge -x munged || true)"
  [ -n "$pid" ] && { say "stopping munged ($pid)"; kill -TERM "$pid"; }
fi
say "stopped"
exit 0
