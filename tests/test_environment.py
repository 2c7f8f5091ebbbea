"""The conda environment carries exactly the pins of requirements.txt; CI calls the README."""

from __future__ import annotations

from pathlib import Path

import yaml


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def test_environment_yml_matches_requirements(repo_root: Path) -> None:
    reqs = _pins((repo_root / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == reqs
    assert "python=3.11" in env["dependencies"]


def test_requirements_agree_with_lock(repo_root: Path) -> None:
    reqs = _pins((repo_root / "requirements.txt").read_text().splitlines())
    lock = _pins((repo_root / "requirements.lock").read_text().splitlines())
    mismatched = {k: (v, lock.get(k)) for k, v in reqs.items() if lock.get(k) != v}
    assert not mismatched


def test_ci_runs_the_readme_test_command(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (repo_root / ".ci/run").read_text()
