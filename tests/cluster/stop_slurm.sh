#!/usr/bin/env bash
# Stop the one-node SLURM started by start_slurm.sh: cancel its jobs, then end each daemon it
# started (slurmd, slurmctld, munged) by the pid file in STATE_DIR/run, and put back any
# /etc/slurm config that was there before.
#
# Usage: tests/cluster/stop_slurm.sh [STATE_DIR]      (default: /tmp/sonodiff-slurm)
set -uo pipefail

STATE_DIR=${1:-${SONODIFF_SLURM_DIR:-/tmp/sonodiff-slurm}}
# Daemons, /etc/slurm and apt need root: a user with password-less sudo (CI runners) re-runs this
# script under sudo.
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    exec sudo -n -E "$0" "$STATE_DIR"
fi
CONF_DIR=/etc/slurm
MARK="# written by sonodiff tests/cluster/start_slurm.sh"
RUN="$STATE_DIR/run"

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_pidfile() {  # stop_pidfile NAME: TERM, wait up to 10 s, then KILL
    local file="$RUN/$1.pid" pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null; fi
        echo "stopped $1 (pid $pid)" >&2
    fi
    rm -f "$file"
}

if [ -s "$RUN/slurmctld.pid" ] && alive "$(cat "$RUN/slurmctld.pid")"; then
    # Jobs first, so that their job steps (slurmstepd) end with them.
    scancel --full --partition=sonodiff >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        [ -z "$(squeue -h -t running,completing,pending -p sonodiff 2>/dev/null)" ] && break
        sleep 0.2
    done
fi

stop_pidfile slurmd
stop_pidfile slurmctld
stop_pidfile munged

for f in slurm.conf gres.conf; do
    if [ -e "$STATE_DIR/$f.orig" ]; then
        cp -p "$STATE_DIR/$f.orig" "$CONF_DIR/$f" && rm -f "$STATE_DIR/$f.orig"
    elif [ -e "$CONF_DIR/$f" ] && grep -qF "$MARK" "$CONF_DIR/$f"; then
        rm -f "$CONF_DIR/$f"
    fi
done
exit 0
