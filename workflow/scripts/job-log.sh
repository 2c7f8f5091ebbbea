#!/usr/bin/env bash
# Run one job's command with its stdout and stderr appended to the rule's log, after a header
# line naming the attempt; every rule's shell command goes through this (common.smk: logged).
#
#   job-log.sh LOG RULE ATTEMPT COMMAND [ARG...]
#
# Header: "== <UTC time> rule=<rule> attempt=<Snakemake attempt> slurm_job=<id|local>
# slurm_restart=<times SLURM restarted the job, ? if unknown> host=<host>".
#
# Snakemake deletes LOG before it runs a job: before each --retries attempt, and again inside
# a requeued SLURM job when it starts over (the job step runs Snakemake afresh). So LOG is kept
# as a hard link of a hidden sibling, .<LOG's name>.attempts, that Snakemake does not know
# about: a job that continues (Snakemake attempt > 1, or a SLURM job started again after a
# requeue) links LOG to it again and appends, so LOG shows every attempt; a fresh job (first
# attempt, not restarted) starts both afresh. Where hard links fail, LOG gets a copy of the
# earlier attempts and the history stops growing.
set -eu

if [ $# -lt 4 ]; then
    echo "usage: $0 LOG RULE ATTEMPT COMMAND [ARG...]" >&2
    exit 2
fi
log=$1 rule=$2 attempt=$3
shift 3
history="$(dirname -- "$log")/.$(basename -- "$log").attempts"
mkdir -p -- "$(dirname -- "$log")"

job=${SLURM_JOB_ID:-local}
# SLURM sets SLURM_RESTART_COUNT in the batch script only (the executor's job step drops it),
# so ask slurmctld for the job's Restarts count
restart=${SLURM_RESTART_COUNT:-}
if [ -z "$restart" ] && [ "$job" != local ] && command -v scontrol >/dev/null 2>&1; then
    restart=$(timeout 10 scontrol show job -o "$job" 2>/dev/null \
        | sed -n 's/.* Restarts=\([0-9][0-9]*\) .*/\1/p' || true)
fi
if [ -z "$restart" ]; then
    if [ "$job" = local ]; then restart=0; else restart="?"; fi
fi

# the SLURM job of the latest attempt in the history ("" if none)
last_job=""
if [ -f "$history" ]; then
    last_job=$(sed -n 's/^== .* slurm_job=\([^ ]*\) .*/\1/p' "$history" | tail -n 1)
fi
continues=0
if [ "$attempt" -gt 1 ] 2>/dev/null; then
    continues=1  # a Snakemake retry (--retries)
elif [ "$restart" != "?" ]; then
    [ "$restart" -eq 0 ] || continues=1  # a requeued SLURM job, started again
elif [ "$job" = "$last_job" ]; then
    continues=1  # no restart count to be had: the same SLURM job again is a restart
fi

if [ "$continues" = 1 ] && [ -f "$history" ]; then
    rm -f -- "$log"
    ln -- "$history" "$log" 2>/dev/null || cp -- "$history" "$log"
else
    rm -f -- "$history" "$log"
    : > "$log"
    ln -- "$log" "$history" 2>/dev/null || true  # no hard links here: LOG holds this attempt only
fi

printf '== %s rule=%s attempt=%s slurm_job=%s slurm_restart=%s host=%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$rule" "$attempt" "$job" "$restart" \
    "$(hostname)" >> "$log"
exec "$@" >> "$log" 2>&1
