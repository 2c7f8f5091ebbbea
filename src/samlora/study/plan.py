"""What a set of studies costs: jobs per study, what they share, training images per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from samlora.study.runspec import RunSpec
from samlora.study.studies import Study


def train_images(spec: RunSpec) -> int | None:
    """Training cases of ``spec`` summed over its members (validation included), or None
    while a member is not prepared."""
    total = 0
    for member in spec.train_sets:
        index = spec.processed(member) / "index.csv"
        if not Path(index).is_file():
            return None
        frame = pd.read_csv(index, dtype=str, keep_default_na=False)
        total += int(frame["split"].isin(["train", "val"]).sum())
    return total


def plan_table(studies: Mapping[str, Study], chosen: Sequence[str]) -> pd.DataFrame:
    """One row per study: training runs (and how many another study shares), prediction
    and evaluation jobs, training images per run (min–max, where prepared)."""
    owners: dict[str, set[str]] = {}
    for name, study in studies.items():
        for run in study.runs:
            owners.setdefault(run.name, set()).add(name)
    rows = []
    for name in chosen:
        study = studies[name]
        images = [n for n in (train_images(r) for r in study.runs) if n is not None]
        modes = sum(len((r.method_cfg.get("prompts") or {}).get("eval_modes", ["none"]))
                    for r, _ in study.evaluations)
        rows.append({
            "study": name, "paper": study.paper, "training runs": len(study.runs),
            "shared": sum(len(owners[r.name]) > 1 for r in study.runs),
            "predictions": len(study.evaluations), "evaluations (modes)": modes,
            "train images/run": (f"{min(images)}-{max(images)}" if images else "not prepared"),
        })
    unique = {r.name for n in chosen for r in studies[n].runs}
    rows.append({"study": "all (each run once)", "paper": "", "training runs": len(unique),
                 "shared": "", "predictions": len({(r.name, t) for n in chosen
                                                   for r, t in studies[n].evaluations}),
                 "evaluations (modes)": "", "train images/run": ""})
    return pd.DataFrame(rows)


def run_table(studies: Mapping[str, Study], chosen: Sequence[str]) -> pd.DataFrame:
    """Every run of the chosen studies: name, method, train sets, target, seed, studies."""
    rows: dict[str, dict[str, object]] = {}
    for name in chosen:
        for run in studies[name].runs:
            row = rows.setdefault(run.name, {
                "run": run.name, "method": run.method, "train sets": "+".join(run.train_sets),
                "target": run.target, "seed": run.seed, "studies": []})
            row["studies"].append(name)  # type: ignore[union-attr]
    for row in rows.values():
        row["studies"] = ", ".join(row["studies"])  # type: ignore[arg-type]
    return pd.DataFrame(list(rows.values()))
