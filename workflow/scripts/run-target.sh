#!/bin/sh
# Run one Snakemake target rule; the DVC stages call this.
#   SAMLORA_PROFILE  Snakemake profile (default: workflow/profiles/local; on a cluster:
#                    workflow/profiles/slurm)
#   SAMLORA_PRESET   preset file(s) merged on top of params.yaml (e.g. presets/demo.yaml)
set -eu
target=$1
# shellcheck disable=SC2086  # SAMLORA_PRESET may hold several files
exec snakemake "$target" --profile "${SAMLORA_PROFILE:-workflow/profiles/local}" \
    --configfile params.yaml ${SAMLORA_PRESET:-}
