"""`python -m samlora plan`, `collect` and `report-index` on the real params.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from samlora.cli import main


def test_plan_counts_runs_shared_runs_and_predictions(repo_root: Path, capsys) -> None:
    assert main(["plan", "--params", str(repo_root / "params.yaml"), "--study",
                 "topolora_rank", "--study", "topolora_components", "--runs"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    # rank: r in {4, 8, 16, 32} x 3 seeds, r=8 being topolora_sam (also in components)
    assert rows["topolora_rank"][2:5] == ["12", "3", "12"]
    # shared with any study of params.yaml: topolora_sam and decoder_only on DRIVE
    assert rows["topolora_components"][2:5] == ["15", "6", "15"]
    assert "all (each run once)" in out and " 24 " in out  # 12 + 15 - 3 shared
    assert "topolora_sam__drive__seed0" in rows  # listed once, with both studies
    assert "topolora_components, topolora_rank" in out or \
        "topolora_rank, topolora_components" in out


def test_collect_and_index(repo_root: Path, tmp_path: Path) -> None:
    for study in ("a", "b"):
        (tmp_path / study).mkdir()
        (tmp_path / study / "metrics.json").write_text(json.dumps({"m": {study: 1}}))
    out = tmp_path / "metrics.json"
    assert main(["collect", "--params", str(repo_root / "params.yaml"), "--inputs",
                 str(tmp_path / "a/metrics.json"), str(tmp_path / "b/metrics.json"),
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == {"a": {"m": {"a": 1}}, "b": {"m": {"b": 1}}}
    index = tmp_path / "index.html"
    assert main(["report-index", "--params", str(repo_root / "params.yaml"), "--studies",
                 "topolora_rank,head_to_head", "--out", str(index)]) == 0
    page = index.read_text()
    # nothing rendered in tmp_path: each report is listed as missing, never linked
    assert "head_to_head" in page and 'href="topolora_rank/main_results.html"' not in page
    assert "report main_results (not rendered yet)" in page
    assert "rank ablation table" in page
