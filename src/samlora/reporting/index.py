"""``reports/index.html``: every study, what it feeds, and links to its rendered reports."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from samlora.utils.io import write_json, write_text


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


def write_index(studies: Mapping[str, object], out: Path) -> Path:
    """Write the index page linking ``reports/<study>/<report>.html`` of each study.

    Args:
        studies: ``{name: Study}`` (see :mod:`samlora.study.studies`).
        out: the page, usually ``reports/index.html``.
    """
    rows = []
    for name, study in studies.items():
        links = " ".join(f'<a href="{html.escape(name)}/{html.escape(r)}.html">'
                         f"{html.escape(r)}</a>" for r in study.reports)
        feeds = "; ".join(html.escape(f) for f in study.feeds)
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(study.paper)}</td>"
                    f"<td>{feeds}</td><td>{len(study.runs)}</td><td>{links}</td></tr>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>samlora reports</title>"
            "</head><body><h1>samlora reports</h1><table border='1' cellpadding='4'>"
            "<tr><th>study</th><th>paper</th><th>feeds</th><th>training runs</th>"
            "<th>reports</th></tr>" + "".join(rows) + "</table></body></html>\n")
    write_text(out, page)
    return Path(out)
