#!/usr/bin/env bash
# Start a one-node SLURM cluster on localhost for the SLURM tests (tests/test_slurm.py).
#
# No systemd here: munged, slurmctld and slurmd are started by hand; their pid files, state,
# spool and logs live in STATE_DIR. The config goes to /etc/slurm/slurm.conf (and gres.conf)
# because the executor plugin's job step clears SLURM_CONF, so srun inside a job only finds
# the default path. No slurmdbd: accounting is off, so `sacct` does not work and Snakemake
# must query job states with squeue (`slurm-status-command: squeue`).
#
# The node is "localhost" with this machine's CPUs (nproc) and a bit less memory than is
# available, plus one fake GPU per CPU (Gres=gpu:<nproc>, empty files) so that rules asking
# for a GPU are scheduled, as many at once as a local run on these cores would run. The whole thing takes a few seconds.
#
# Usage:  tests/cluster/start_slurm.sh [STATE_DIR]     (default: /tmp/sonodiff-slurm)
#         tests/cluster/stop_slurm.sh  [STATE_DIR]
# Exit status: 0 cluster up (node idle); 77 SLURM cannot be installed or run here (the
# reason is the last line on stderr; the tests skip with it); anything else: a failure.
set -euo pipefail

STATE_DIR=${1:-${SONODIFF_SLURM_DIR:-/tmp/sonodiff-slurm}}
# Daemons, /etc/slurm and apt need root: a user with password-less sudo (CI runners) re-runs this
# script under sudo.
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    exec sudo -n -E "$0" "$STATE_DIR"
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF_DIR=/etc/slurm
MARK="# written by sonodiff tests/cluster/start_slurm.sh"
NODE=localhost
PARTITION=sonodiff

skip() { echo "SKIP: $*" >&2; exit 77; }
die() { echo "ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- install (Debian packages)
have_slurm() { command -v slurmctld && command -v slurmd && command -v munged && command -v sinfo; } >/dev/null
if ! have_slurm; then
    [ "$(id -u)" = 0 ] || skip "slurm-wlm/munge are not installed and installing them needs root"
    command -v apt-get >/dev/null || skip "slurm-wlm/munge are not installed and there is no apt-get"
    echo "installing slurm-wlm and munge with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt/dpkg (the lock) rather than failing at once.
    apt_opts=(-q -o DPkg::Lock::Timeout=600)
    apt-get "${apt_opts[@]}" update >&2 || skip "apt-get update failed"
    apt-get "${apt_opts[@]}" install -y --no-install-recommends slurm-wlm munge >&2 \
        || skip "apt-get install slurm-wlm munge failed"
    have_slurm || skip "slurm-wlm installed but slurmctld/slurmd/munged/sinfo not on PATH"
fi
[ "$(id -u)" = 0 ] || skip "slurmd and munged must be started as root"

# A cluster left over from an earlier run (this STATE_DIR, or the one named in the slurm.conf
# an earlier start wrote) is stopped first.
if [ -f "$CONF_DIR/slurm.conf" ] && grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
    old=$(sed -n "1s/.*(state in \(.*\))$/\1/p" "$CONF_DIR/slurm.conf")
    if [ -n "$old" ] && [ -d "$old/run" ]; then "$HERE/stop_slurm.sh" "$old" >&2 || true; fi
fi
if [ -d "$STATE_DIR/run" ]; then
    "$HERE/stop_slurm.sh" "$STATE_DIR" >&2 || true
fi
mkdir -p "$STATE_DIR"/{state,spool,log,run}
STATE_DIR=$(cd "$STATE_DIR" && pwd)

# ---------------------------------------------------------------- munge
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
    echo "munged already running; using it" >&2
else
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
    fi
    # munged runs as the munge user, which may not enter STATE_DIR (pytest's are 0700): its pid
    # and log files go to /run/munge; the pid is copied to STATE_DIR/run for stop_slurm.sh.
    MUNGE_RUN=/run/munge
    if id munge >/dev/null 2>&1; then
        install -d -o munge -g munge -m 755 "$MUNGE_RUN"
        rm -f "$MUNGE_RUN/munged.pid"
        runuser -u munge -- munged --pid-file="$MUNGE_RUN/munged.pid" --log-file="$MUNGE_RUN/munged.log"
    else
        install -d -m 755 "$MUNGE_RUN"
        rm -f "$MUNGE_RUN/munged.pid"
        munged --force --pid-file="$MUNGE_RUN/munged.pid" --log-file="$MUNGE_RUN/munged.log"
    fi
    for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
    munge_ok || die "munged did not start (see $MUNGE_RUN/munged.log)"
    cp "$MUNGE_RUN/munged.pid" "$STATE_DIR/run/munged.pid"
fi

# ---------------------------------------------------------------- slurm.conf, gres.conf
CPUS=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)   # nproc honours OMP_NUM_THREADS
AVAIL_MB=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MB=$((AVAIL_MB * 9 / 10))   # a bit below what is free, so slurmd never finds less

mkdir -p "$CONF_DIR"
for f in slurm.conf gres.conf; do
    # Keep a config we did not write (restored by stop_slurm.sh).
    if [ -e "$CONF_DIR/$f" ] && ! grep -qF "$MARK" "$CONF_DIR/$f"; then
        cp -p "$CONF_DIR/$f" "$STATE_DIR/$f.orig"
    fi
done

cat > "$CONF_DIR/slurm.conf" <<EOF
$MARK (state in $STATE_DIR)
ClusterName=sonodiff
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/run/slurmctld.pid
SlurmdPidFile=$STATE_DIR/run/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in a container: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# No slurmdbd: no accounting, no job completion log. sacct therefore does not work.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue keeps finished jobs this long; the plugin needs >= 3x its first status-check delay.
MinJobAge=600
# Refuse at submission a job no node can run (instead of leaving it pending forever).
EnforcePartLimits=ALL
ReturnToService=2
KillWait=5
InactiveLimit=0
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MB Gres=gpu:$CPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# Fake GPUs, one per CPU, each an empty file: jobs asking for --gpus=1 are scheduled; nothing
# real is behind them (slurmd counts the files; without cgroups nothing opens them).
mkdir -p "$STATE_DIR/fake_gpus"
GPU_FILES=$(for i in $(seq 0 $((CPUS - 1))); do : > "$STATE_DIR/fake_gpus/gpu$i"; printf '%s,' "$STATE_DIR/fake_gpus/gpu$i"; done)
cat > "$CONF_DIR/gres.conf" <<EOF
$MARK
NodeName=$NODE Name=gpu File=${GPU_FILES%,}
EOF

# ---------------------------------------------------------------- daemons
# -c: start from a clean state (no jobs from an earlier cluster).
slurmctld -c -f "$CONF_DIR/slurm.conf" || die "slurmctld did not start (see $STATE_DIR/log/slurmctld.log)"
slurmd -N "$NODE" -f "$CONF_DIR/slurm.conf" || die "slurmd did not start (see $STATE_DIR/log/slurmd.log)"

state=""
for _ in $(seq 120); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1 || true)
    [ "$state" = idle ] && break
    case "$state" in
        down*|drain*|inval*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
if [ "$state" != idle ]; then
    tail -n 20 "$STATE_DIR/log/slurmctld.log" "$STATE_DIR/log/slurmd.log" >&2 || true
    die "node $NODE is not idle after 60 s (state '$state')"
fi
echo "SLURM up: node $NODE ($CPUS CPUs, ${REAL_MB} MB, gpu:$CPUS), partition $PARTITION, state in $STATE_DIR" >&2
