#!/usr/bin/env bash
# A throw-away one-node SLURM cluster (22.05, Debian's slurm-wlm) with one fake GPU, for the
# workflow's SLURM test (tests/workflow/test_slurm.py) and for trying the slurm profile by hand.
#
#   .ci/slurm/cluster.sh up DIR     install slurm-wlm + munge if missing (root), start munged,
#                                   slurmctld and slurmd with every config, state, spool, pid,
#                                   key, socket and log file under DIR, wait for the node to be
#                                   idle, and check a one-GPU job step
#   .ci/slurm/cluster.sh down DIR   cancel the cluster's jobs, then stop the daemons that `up DIR`
#                                   started (by their recorded PIDs, newest first) and wait
#
# Clients find the cluster through SLURM_CONF=DIR/etc/slurm.conf (`up` prints it). SLURM's own
# job steps inside a batch job (the executor plugin's `srun`) drop SLURM_* variables and read
# /etc/slurm/slurm.conf, so `up` links that path to DIR's file while the cluster runs, and only
# when no such file exists; `down` removes the link (only the one it made).
#
# DIR and every folder above it must be searchable by the munge user (mode o+x), since munged
# runs as that user and keeps its socket under DIR. Ports: SAMLORA_SLURMCTLD_PORT and
# SAMLORA_SLURMD_PORT; by default the first free pair from 6817/6818 upwards.
set -eu

PROG=$(basename "$0")
die() { echo "$PROG: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $PROG up|down DIR"
ACTION=$1
[ -n "$2" ] || die "usage: $PROG up|down DIR"

WAIT_IDLE_S=${SAMLORA_SLURM_WAIT_S:-90}

# ---------------------------------------------------------------- helpers

# cmdline of a live PID, NUL separators turned into spaces; empty if it is gone
cmdline_of() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null || true; }

# true when PID is alive and is the daemon NAME started for this DIR (guards against PID reuse)
ours() {
    _cmd=$(cmdline_of "$2")
    case $_cmd in *"$1"*"$DIR/"*) return 0 ;; *) return 1 ;; esac
}

# the recorded daemons still running, as "name pid" lines
running_daemons() {
    [ -f "$DIR/pids" ] || return 0
    while read -r name pid; do
        if ours "$name" "$pid"; then echo "$name $pid"; fi
    done < "$DIR/pids"
}

log_tails() {
    for f in "$DIR"/log/slurmctld.log "$DIR"/log/slurmd.log "$DIR"/munge/munged.log; do
        [ -f "$f" ] || continue
        echo "---- last lines of $f"
        tail -n 25 "$f"
    done
}

# wait (up to $2 s) until file $1 holds a PID, then print it
pid_from_file() {
    _i=0
    while [ "$_i" -lt "$(( $2 * 10 ))" ]; do
        if [ -s "$1" ]; then
            _pid=$(tr -dc '0-9' < "$1")
            if [ -n "$_pid" ] && [ -d "/proc/$_pid" ]; then echo "$_pid"; return 0; fi
        fi
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return 0
    fi
    command -v apt-get >/dev/null || die "slurm-wlm/munge missing and no apt-get to install them"
    echo "$PROG: installing slurm-wlm munge with apt-get" >&2
    # keep the packages' init scripts from starting system-wide daemons (ours run from DIR)
    _policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        _policy=/usr/sbin/policy-rc.d
    fi
    _apt="apt-get -y -q -o DPkg::Lock::Timeout=300"
    _ok=1
    if ! apt-cache show slurm-wlm munge >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive $_apt update >&2 || _ok=0
    fi
    if [ "$_ok" = 1 ] && ! DEBIAN_FRONTEND=noninteractive $_apt install slurm-wlm munge >&2; then
        # stale package lists (a 404 on a superseded version): refresh them once and retry
        DEBIAN_FRONTEND=noninteractive $_apt update >&2 \
            && DEBIAN_FRONTEND=noninteractive $_apt install slurm-wlm munge >&2 || _ok=0
    fi
    if [ -n "$_policy" ]; then rm -f "$_policy"; fi
    [ "$_ok" = 1 ] || die "apt-get could not install slurm-wlm munge (see the output above)"
    command -v slurmctld >/dev/null || die "slurm-wlm installed but slurmctld is not on PATH"
}

write_config() {
    _node=$(slurmd -C | head -n 1)
    case $_node in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $_node" ;; esac
    HOST=${_node#NodeName=}
    HOST=${HOST%% *}
    cat > "$DIR/etc/slurm.conf" <<EOF
# Written by $PROG up $DIR
ClusterName=samlora-ci
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# no accounting: the executor needs slurm-status-command: squeue
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# batch jobs may be requeued (scontrol requeue, node failure, preemption) unless they opt out
JobRequeue=1
# a requeued or cancelled job gets SIGTERM, then SIGKILL after this many seconds
KillWait=5
# finished jobs stay visible to squeue this long (the executor polls at most every 180 s)
MinJobAge=300
ReturnToService=2
InactiveLimit=0
DefMemPerCPU=1000
$_node Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP
EOF
    cat > "$DIR/etc/gres.conf" <<EOF
# Written by $PROG up $DIR: one fake GPU (File= is needed, or the node drains)
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null
EOF
}

start_munged() {
    mkdir -p "$DIR/munge"
    chown munge:munge "$DIR/munge"
    chmod 755 "$DIR/munge"  # munged wants its socket folder searchable by all
    runuser -u munge -- test -w "$DIR/munge" \
        || die "the munge user cannot reach $DIR/munge:" \
            "make $DIR and the folders above it searchable (chmod o+x)"
    runuser -u munge -- mungekey --create --keyfile="$DIR/munge/munge.key"
    runuser -u munge -- munged --socket="$DIR/munge/munge.socket" \
        --key-file="$DIR/munge/munge.key" --log-file="$DIR/munge/munged.log" \
        --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed" \
        || { log_tails >&2; die "munged did not start"; }
    _pid=$(pid_from_file "$DIR/munge/munged.pid" 10) \
        || { log_tails >&2; die "munged wrote no pid file"; }
    echo "munged $_pid" >> "$DIR/pids"
    munge -n -S "$DIR/munge/munge.socket" | unmunge -S "$DIR/munge/munge.socket" >/dev/null \
        || { log_tails >&2; die "munge -n | unmunge failed"; }
}

start_slurm_daemon() {  # name
    "$1" -f "$DIR/etc/slurm.conf" || { log_tails >&2; die "$1 did not start"; }
    _pid=$(pid_from_file "$DIR/run/$1.pid" 20) || { log_tails >&2; die "$1 wrote no pid file"; }
    echo "$1 $_pid" >> "$DIR/pids"
}

wait_idle() {
    _end=$(( $(date +%s) + WAIT_IDLE_S ))
    _state=""
    while [ "$(date +%s)" -lt "$_end" ]; do
        _state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null | sort -u | tr '\n' ' ')
        case $_state in "idle "*) return 0 ;; esac
        sleep 1
    done
    {
        echo "$PROG: node $HOST not idle after ${WAIT_IDLE_S} s (sinfo state: '${_state% }')"
        sinfo -N -l 2>&1 || true
        scontrol show node "$HOST" 2>&1 | grep -i -E "state|reason" || true
        log_tails
    } >&2
    exit 1
}

# ---------------------------------------------------------------- up / down

stop_after_failed_up() {
    _rc=$?
    if [ "$_rc" != 0 ]; then
        echo "$PROG: up failed: stopping what it started" >&2
        (down) || true
    fi
}

up() {
    [ "$(id -u)" = 0 ] || die "up needs root (it starts slurmd as root and may apt-get install)"
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    _left=$(running_daemons | tr '\n' ' ')
    [ -z "$_left" ] || die "daemons from an earlier 'up $DIR' still run (${_left% }):" \
        "run '$PROG down $DIR' first"
    install_packages
    # a failed `up` stops what it started (a refused one, above, touches nothing)
    trap stop_after_failed_up EXIT
    for _sub in etc state spool run log munge pids; do rm -rf "${DIR:?}/$_sub"; done
    mkdir -p "$DIR/etc" "$DIR/state" "$DIR/spool" "$DIR/run" "$DIR/log"
    CTLD_PORT=${SAMLORA_SLURMCTLD_PORT:-}
    SLURMD_PORT=${SAMLORA_SLURMD_PORT:-}
    if [ -z "$CTLD_PORT" ] || [ -z "$SLURMD_PORT" ]; then
        _p=6817
        while port_busy "$_p" || port_busy "$((_p + 1))"; do
            _p=$((_p + 2))
            [ "$_p" -lt 6917 ] || die "no free port pair in 6817-6917"
        done
        CTLD_PORT=${CTLD_PORT:-$_p}
        SLURMD_PORT=${SLURMD_PORT:-$((_p + 1))}
    fi
    write_config
    export SLURM_CONF="$DIR/etc/slurm.conf"
    : > "$DIR/pids"
    start_munged
    # the batch job's own `srun` (the executor's job step) reads /etc/slurm/slurm.conf
    if [ ! -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
        mkdir -p /etc/slurm
        ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
        echo "$SLURM_CONF" > "$DIR/etc-link"
    elif [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null || true)" != "$SLURM_CONF" ]; then
        echo "$PROG: warning: /etc/slurm/slurm.conf exists and is not this cluster's;" \
            "job steps inside batch jobs (srun without SLURM_CONF) will use it" >&2
    fi
    start_slurm_daemon slurmctld
    start_slurm_daemon slurmd
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    wait_idle
    _out=$(timeout 60 srun -p gpu --gpus=1 -c1 hostname 2>&1) \
        || { echo "$_out" >&2; log_tails >&2; die "srun -p gpu --gpus=1 -c1 hostname failed"; }
    trap - EXIT
    echo "$PROG: cluster up on $HOST (ports $CTLD_PORT/$SLURMD_PORT);" \
        "export SLURM_CONF=$SLURM_CONF" >&2
}

down() {
    [ -d "$DIR" ] || die "no such folder: $DIR"
    DIR=$(cd "$DIR" && pwd -P)
    export SLURM_CONF="$DIR/etc/slurm.conf"
    _daemons=$(running_daemons)
    # cancel the cluster's jobs while slurmctld still runs, so no job or slurmstepd outlives it
    if echo "$_daemons" | grep -q '^slurmctld ' && echo "$_daemons" | grep -q '^slurmd '; then
        _jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
        if [ -n "${_jobs// }" ]; then
            # shellcheck disable=SC2086
            scancel $_jobs 2>/dev/null || true
            _i=0
            while [ "$_i" -lt 30 ] && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; do
                sleep 1
                _i=$((_i + 1))
            done
        fi
    fi
    # newest first: the pids file lists them in start order
    if [ -f "$DIR/pids" ]; then
        tac "$DIR/pids" | while read -r name pid; do
            ours "$name" "$pid" || continue
            kill -TERM "$pid" 2>/dev/null || true
            _i=0
            while ours "$name" "$pid" && [ "$_i" -lt 200 ]; do sleep 0.1; _i=$((_i + 1)); done
            if ours "$name" "$pid"; then
                echo "$PROG: $name ($pid) ignored SIGTERM for 20 s: SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
                _i=0
                while ours "$name" "$pid" && [ "$_i" -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
            fi
            ! ours "$name" "$pid" || die "$name ($pid) is still running"
        done
        rm -f "$DIR/pids"
    fi
    if [ -f "$DIR/etc-link" ]; then
        _link=$(readlink /etc/slurm/slurm.conf 2>/dev/null || true)
        if [ "$_link" = "$(cat "$DIR/etc-link")" ]; then
            rm -f /etc/slurm/slurm.conf
        fi
        rm -f "$DIR/etc-link"
    fi
}

DIR=$2
case $ACTION in
    up) up ;;
    down) down ;;
    *) die "usage: $PROG up|down DIR" ;;
esac
