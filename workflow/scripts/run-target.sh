#!/bin/sh
# Run Snakemake target rules for one DVC stage (dvc.yaml's cmd lines call this):
#   sh workflow/scripts/run-target.sh <target> [<target> ...]
# Presets come from params.yaml's `preset` key (a DVC param, so dvc.lock records it).
#   SAMLORA_PROFILE  Snakemake profile (default: workflow/profiles/local; on a cluster:
#                    workflow/profiles/slurm)
# Around Snakemake (samlora.versioning): refuse a params.yaml edit that an active preset
# would override; adopt the Snakemake metadata recorded inside the DVC outputs where it is
# missing (a --temp or --queue experiment, a fresh clone); record it again afterwards.
set -eu
if [ -n "${SAMLORA_PRESET:-}" ]; then
    echo "run-target.sh: SAMLORA_PRESET is not read (DVC cannot see it); set the preset in" \
         "params.yaml instead: preset: ${SAMLORA_PRESET} (or dvc exp run -S" \
         "preset=${SAMLORA_PRESET})" >&2
    exit 2
fi
python -m samlora.versioning check-presets
python -m samlora.versioning adopt
snakemake "$@" --profile "${SAMLORA_PROFILE:-workflow/profiles/local}" \
    --configfile params.yaml
python -m samlora.versioning record
