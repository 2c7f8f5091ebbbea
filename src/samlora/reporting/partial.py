"""Render a study that is not complete yet: what it has, with its gaps named.

The workflow renders a study's reports once every evaluation it lists is done. Mid-study
(a run still training, a failed job under ``--keep-going``), :func:`render_partial`
aggregates the per-image tables that exist into ``results/<study>/partial/`` and renders
each of the study's reports into ``reports/<study>/partial/``, each opening with the list of
evaluations it lacks. Those folders are not workflow outputs, so a partial report never
stands in for the complete one; the index links it while the study is incomplete.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from samlora.evaluation.evaluate import PER_IMAGE_CSV

log = logging.getLogger(__name__)

PARTIAL = "partial"


def study_tables(study: Any, root: Path = Path()) -> tuple[list[Path], list[str]]:
    """The per-image tables of ``study`` that exist under ``root``, and the evaluations
    (``<run> on <test set>``, ``human row on <test set>``) that do not yet."""
    expected = [(Path(root) / spec.result_dir(test) / PER_IMAGE_CSV, f"{spec.name} on {test}")
                for spec, test in study.evaluations]
    expected += [(Path(root) / "results" / "human" / test / PER_IMAGE_CSV,
                  f"human row on {test}") for test in study.human]
    have = [path for path, _ in expected if path.is_file()]
    missing = [what for path, what in expected if not path.is_file()]
    return have, missing


def render_partial(cfg: Any, study: Any, root: Path = Path(),
                   notebooks: Path = Path("notebooks")) -> list[Path]:
    """Aggregate what ``study`` has and render its reports under ``reports/<study>/partial``.

    Returns:
        The rendered notebooks.

    Raises:
        ValueError: the study has no evaluated run yet (nothing to render).
    """
    from samlora.evaluation.aggregate import aggregate, write_comparisons
    from samlora.reporting.render import render_notebook

    have, missing = study_tables(study, root)
    if not [p for p in have if p.parent.parent.name != "human"]:
        raise ValueError(f"study {study.name}: no run is evaluated yet ({len(missing)} "
                         "evaluations missing); nothing to render")
    results = Path(root) / "results" / study.name / PARTIAL
    summary = results / "summary.csv"
    aggregate(have, summary, results / "metrics.json",
              n_resamples=int(cfg.evaluate.get("bootstrap", 1000)), modes=list(study.modes),
              native_metrics=list(cfg.evaluate.metrics))
    if study.reference:
        try:
            write_comparisons(have, study.reference, results / "comparisons.csv",
                              modes=list(study.modes))
        except ValueError as err:  # the reference's own runs are among the missing
            log.warning("study %s: no comparisons yet: %s", study.name, err)
    out = Path(root) / "reports" / study.name / PARTIAL
    first = next(p for p in have if p.parent.parent.name != "human")
    written = []
    for report in study.reports:
        nb = out / f"{report}.ipynb"
        render_notebook(Path(notebooks) / f"{report}.ipynb", nb, nb.with_suffix(".html"), {
            "summary_csv": str(summary.resolve()),
            "per_image_csvs": [str(p.resolve()) for p in have],
            "processed_root": str((Path(root) / cfg.data.processed_dir).resolve()),
            "example_run": str(first.parent.resolve()), "example_case": None,
            "threshold": float(cfg.evaluate.threshold),
            "figures_dir": str((out / "figures").resolve()),
            "tables_dir": str((out / "tables").resolve()), "missing": missing})
        written.append(nb)
    log.info("study %s: rendered %d report(s) from %d of %d tables into %s", study.name,
             len(written), len(have), len(have) + len(missing), out)
    return written
