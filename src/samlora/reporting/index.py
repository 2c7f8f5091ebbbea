"""``reports/index.html``: every study, what it feeds, how far it got, and its outputs.

Where the page looks, relative to the project root (the folder holding ``reports/``):

- ``results/runs/<run>/<test set>/metrics_per_image.csv``: one evaluation of a run;
- ``results/human/<test set>/metrics_per_image.csv``: the second observer's (human) row;
- ``results/<study>/summary.csv``: the study's summary;
- ``reports/<study>/<report>.html``: a rendered report, its figures in
  ``reports/<study>/figures/*.png`` (a ``.pdf`` beside each) and its tables in
  ``reports/<study>/tables/*.md|.csv|.tex``.

The page is one self-contained file (inline CSS, no scripts or fonts), its links relative
to it, so the ``reports/`` folder can be copied or served as it is.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from samlora.utils.io import write_json, write_text

PER_IMAGE = "metrics_per_image.csv"
RUNS_RESULTS = Path("results") / "runs"
TABLE_SUFFIXES = (".md", ".csv", ".tex")
THUMB_WIDTH = 240
CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}"
    "table.studies{border-collapse:collapse}"
    "table.studies td,table.studies th{border:1px solid #bbb;padding:4px 8px;text-align:left}"
    "section{border-top:1px solid #ccc;margin-top:2em}"
    ".written,.meta{color:#666}.complete{color:#176117}.incomplete{color:#a33}"
    ".not-rendered{color:#888}.figures{display:flex;flex-wrap:wrap;gap:1em}"
    "figure{margin:0;text-align:center}figure img{border:1px solid #ddd;height:auto}"
    "figcaption{font-size:90%}"
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def collect_metrics(inputs: Sequence[Path], out: Path) -> dict[str, object]:
    """Merge per-study ``results/<study>/metrics.json`` into one ``{study: metrics}`` file
    (the DVC metric)."""
    merged: dict[str, object] = {}
    for path in inputs:
        path = Path(path)
        try:
            merged[path.parent.name] = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); run the aggregate step for "
                             f"study {path.parent.name} again") from None
    write_json(out, merged)
    return merged


def _status(study: Any, name: str, root: Path) -> dict[str, Any]:
    """What of ``study`` exists under ``root``: evaluations, human rows, summary, reports,
    figures and tables (see the module docstring for the layout)."""
    evaluations = list(dict.fromkeys((spec.name, test) for spec, test in study.evaluations))
    missing_evals = [f"{run} on {test}" for run, test in evaluations
                     if not (root / RUNS_RESULTS / run / test / PER_IMAGE).is_file()]
    human = list(dict.fromkeys(getattr(study, "human", ()) or ()))
    missing_human = [f"human row on {test}" for test in human
                     if not (root / "results" / "human" / test / PER_IMAGE).is_file()]
    folder = root / "reports" / name
    reports = {r: folder / f"{r}.html" for r in getattr(study, "reports", ())}
    summary = root / "results" / name / "summary.csv"
    missing = (missing_evals + missing_human
               + ([f"summary (results/{name}/summary.csv)"] if not summary.is_file() else [])
               + [f"report {r} (not rendered yet)" for r, p in reports.items()
                  if not p.is_file()])
    tables: dict[str, list[Path]] = {}
    for path in sorted((folder / "tables").glob("*")):
        if path.suffix in TABLE_SUFFIXES and path.is_file():
            tables.setdefault(path.stem, []).append(path)
    return {
        "evals": (len(evaluations) - len(missing_evals), len(evaluations)),
        "human": (len(human) - len(missing_human), len(human)),
        "reports": reports, "summary": summary, "missing": missing,
        "figures": sorted(p for p in (folder / "figures").glob("*.png") if p.is_file()),
        "tables": {stem: sorted(paths, key=lambda p: TABLE_SUFFIXES.index(p.suffix))
                   for stem, paths in tables.items()},
    }


def _count(done_total: tuple[int, int]) -> str:
    return f"{done_total[0]} / {done_total[1]}" if done_total[1] else "-"


def _section(name: str, study: Any, state: dict[str, Any], href: Any) -> str:
    """The ``<section>`` of one study."""
    feeds = "; ".join(getattr(study, "feeds", ()) or ()) or "-"
    parts = [f'<section id="{_e("study-" + name)}"><h2>{_e(name)}</h2>',
             f'<p class="meta">paper: {_e(getattr(study, "paper", "") or "-")}'
             f"<br>feeds: {_e(feeds)}</p>",
             f'<p>evaluations complete: <span class="evals">{_count(state["evals"])}</span>']
    if state["human"][1]:
        parts.append(f' &middot; human rows: <span class="human">{_count(state["human"])}</span>')
    summary = (f' &middot; <a href="{href(state["summary"])}">summary.csv</a>'
               if state["summary"].is_file() else " &middot; summary not aggregated yet")
    parts.append(summary + "</p>")
    if state["missing"]:
        items = "".join(f"<li>{_e(m)}</li>" for m in state["missing"])
        parts.append(f'<p class="status incomplete">incomplete: {len(state["missing"])} '
                     f'missing</p><ul class="missing">{items}</ul>')
    else:
        parts.append('<p class="status complete">complete</p>')
    links = []
    for report, path in state["reports"].items():
        partial = path.parent / "partial" / path.name  # `samlora report-partial`
        links.append(f'<li><a class="report" href="{href(path)}">{_e(report)}</a></li>'
                     if path.is_file() else
                     f'<li><span class="report not-rendered">{_e(report)}</span>: '
                     "not rendered yet" + (f' &middot; <a class="partial" href="{href(partial)}">'
                                           "partial, from the runs so far</a>"
                                           if partial.is_file() else "") + "</li>")
    parts.append("<h3>Reports</h3>" + (f'<ul class="reports">{"".join(links)}</ul>'
                                        if links else "<p>none</p>"))
    if state["figures"]:
        figures = []
        for png in state["figures"]:
            pdf = png.with_suffix(".pdf")
            extra = (f' &middot; <a class="pdf" href="{href(pdf)}">pdf</a>'
                     if pdf.is_file() else "")
            figures.append(f'<figure><a href="{href(png)}"><img src="{href(png)}" '
                           f'loading="lazy" width="{THUMB_WIDTH}" alt="{_e(png.stem)}"></a>'
                           f"<figcaption>{_e(png.stem)}{extra}</figcaption></figure>")
        parts.append(f'<h3>Figures</h3><div class="figures">{"".join(figures)}</div>')
    if state["tables"]:
        rows = "".join(
            f"<li>{_e(stem)}: " + " ".join(f'<a class="table" href="{href(p)}">'
                                          f"{_e(p.suffix[1:])}</a>" for p in paths) + "</li>"
            for stem, paths in state["tables"].items())
        parts.append(f'<h3>Tables</h3><ul class="tables">{rows}</ul>')
    return "".join(parts) + "</section>"


def write_index(studies: Mapping[str, Any], out: Path, *, root: Path | None = None) -> Path:
    """Write the index page: a table of the studies, then one section per study with its
    paper and feeds, how many of its evaluations are complete, links to its rendered
    reports, thumbnails of its figures, links to its tables, and what is still missing.

    Args:
        studies: ``{name: Study}`` (see :mod:`samlora.study.studies`); any object with
            ``paper``, ``feeds``, ``evaluations`` (``(spec, test_set)`` pairs, ``spec.name``
            the run's name), ``reports`` and ``human`` does.
        out: the page, usually ``<root>/reports/index.html``.
        root: the project folder holding ``results/`` and ``reports/``; default
            ``out``'s grandparent.
    """
    out = Path(out)
    root = Path(root) if root is not None else out.parent.parent

    def href(path: Path) -> str:
        rel = Path(os.path.relpath(Path(path).resolve(), out.parent.resolve()))
        return _e("/".join(quote(part) for part in rel.parts))

    states = {name: _status(study, name, root) for name, study in studies.items()}
    rows = []
    for name, study in studies.items():
        state = states[name]
        rendered = sum(p.is_file() for p in state["reports"].values())
        status = "complete" if not state["missing"] else f'{len(state["missing"])} missing'
        rows.append(f'<tr><td><a href="#{_e(quote("study-" + name))}">{_e(name)}</a></td>'
                    f'<td>{_e(getattr(study, "paper", "") or "-")}</td>'
                    f'<td>{len(getattr(study, "runs", ()) or ())}</td>'
                    f'<td>{_count(state["evals"])}</td><td>{_count(state["human"])}</td>'
                    f'<td>{rendered} / {len(state["reports"])}</td><td>{_e(status)}</td></tr>')
    written = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>samlora reports</title>"
            f"<style>{CSS}</style></head><body><h1>samlora reports</h1>"
            f'<p class="written">written {written}</p>'
            '<table class="studies"><thead><tr><th>study</th><th>paper</th>'
            "<th>training runs</th><th>evaluations</th><th>human rows</th><th>reports</th>"
            "<th>status</th></tr>"
            f'</thead><tbody>{"".join(rows)}</tbody></table>'
            + "".join(_section(name, study, states[name], href)
                      for name, study in studies.items())
            + "</body></html>\n")
    # ASCII only (non-ASCII as character references): readable whatever the locale
    write_text(out, page.encode("ascii", "xmlcharrefreplace").decode("ascii"))
    return out
