"""train.allocator: which allocator a heavy step restarts under, and that it really loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from samlora.training.identity import run_hash
from samlora.utils import allocator

REPO = Path(__file__).resolve().parents[2]


def _fake_conda(tmp_path: Path) -> Path:
    lib = tmp_path / "lib" / "libjemalloc.so.2"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")
    return lib


def test_auto_prefers_jemalloc_and_keeps_what_the_user_set(tmp_path: Path) -> None:
    lib = _fake_conda(tmp_path)
    env = {"CONDA_PREFIX": str(tmp_path), "LD_PRELOAD": "/opt/other.so"}
    name, add = allocator.resolve("auto", env)
    assert name == "jemalloc"
    assert add["LD_PRELOAD"] == f"{lib} /opt/other.so"
    assert add["MALLOC_CONF"] == allocator.JEMALLOC_CONF
    _, add = allocator.resolve("jemalloc", {**env, "MALLOC_CONF": "narenas:2"})
    assert add["MALLOC_CONF"] == "narenas:2"


def test_auto_falls_back_to_huge_pages_then_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "find_jemalloc", lambda env=None: None)
    monkeypatch.setattr(allocator, "glibc_has_hugetlb", lambda: True)
    name, add = allocator.resolve("auto", {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert (name, add) == ("hugepages", {"GLIBC_TUNABLES":
                                         "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"})
    with pytest.raises(ValueError, match="train.allocator: jemalloc is not installed"):
        allocator.resolve("jemalloc", {})
    monkeypatch.setattr(allocator, "glibc_has_hugetlb", lambda: False)
    assert allocator.resolve("auto", {}) == ("system", {})
    with pytest.raises(ValueError, match="hugepages needs glibc 2.35"):
        allocator.resolve("hugepages", {})
    assert allocator.resolve("system", {}) == ("system", {})


def test_an_unknown_allocator_is_one_line_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"train.allocator: 'tcmalloc' is not one of"):
        allocator.resolve("tcmalloc", {})


def test_the_allocator_is_not_part_of_a_runs_identity() -> None:
    rc = {"train": {"lr": 1e-4, "allocator": "auto"}}
    assert run_hash(rc, "d") == run_hash({"train": {"lr": 1e-4, "allocator": "system"}}, "d")
    assert run_hash(rc, "d") != run_hash({"train": {"lr": 2e-4, "allocator": "auto"}}, "d")


def _maps_under(additions: dict[str, str]) -> str:
    code = "print(open('/proc/self/maps').read())"
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **additions},
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(allocator.find_jemalloc() is None,
                    reason="libjemalloc2 is not installed (make jemalloc)")
def test_the_chosen_jemalloc_is_what_the_process_runs_on() -> None:
    name, add = allocator.resolve("auto")
    assert name == "jemalloc"
    assert "libjemalloc" in _maps_under(add)
    assert "libjemalloc" not in _maps_under({})


def test_python_m_samlora_restarts_a_model_step_once_under_the_allocator(
        tmp_path: Path) -> None:
    """A real ``python -m samlora train``: it restarts under ``train.allocator`` (the
    restarted process logs the allocator once and then fails on the unknown run, as
    the first process would have), while a step that runs no model does not restart."""
    expected, _ = allocator.resolve("auto")
    env = {k: v for k, v in os.environ.items() if k != allocator.MARKER}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-m", "samlora", "train", "--params",
                          str(REPO / "params.yaml"), "--run-name", "no-such-run", "--out", "runs/x"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 2, res.stderr
    logged = res.stderr.count(f"memory allocator: {expected}")
    assert logged == (0 if expected == "system" else 1), res.stderr
    assert "no-such-run" in res.stderr
    res = subprocess.run([sys.executable, "-m", "samlora", "train", "--params",
                          str(REPO / "params.yaml"), "--run-name", "x", "--out", "runs/x",
                          "train.allocator=tcmalloc"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 2
    assert "train.allocator" in res.stderr and "'tcmalloc' is not one of" in res.stderr
    res = subprocess.run([sys.executable, "-m", "samlora", "fidelity", "--params",
                          str(REPO / "params.yaml")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert "memory allocator" not in res.stderr
