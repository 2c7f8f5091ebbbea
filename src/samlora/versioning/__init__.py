"""DVC's side of the workflow: what makes `dvc repro` and `dvc exp run` behave.

Each DVC stage runs Snakemake target rules (``workflow/scripts/run-target.sh``); Snakemake
decides which jobs are out of date. This package holds what that needs beyond Snakemake:

- :mod:`.records`: Snakemake's per-output metadata, kept inside the DVC outputs, so a fresh
  copy (``dvc exp run --temp`` / ``--queue``, a new clone after ``dvc pull``) reruns exactly
  the jobs whose params changed instead of nothing;
- :mod:`.presets`: the refusal of a params.yaml edit that an active preset would override;
- :mod:`.plots`: the training curves and summary bars ``dvc plots`` draws.
"""
