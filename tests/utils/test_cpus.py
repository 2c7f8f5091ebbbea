"""allocated_cpus: the SLURM allocation's CPUs, capped by the affinity mask; the mask alone
outside SLURM."""

from __future__ import annotations

import os

import pytest

from samlora.utils import cpus
from samlora.utils.cpus import allocated_cpus

SLURM_VARS = ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_PER_GPU", "SLURM_GPUS", "SLURM_GPUS_ON_NODE",
              "SLURM_CPUS_ON_NODE")


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch):
    """``node(affinity)``: no SLURM variables, and an affinity mask of ``affinity`` CPUs
    (None: a platform without sched_getaffinity) on a 64-CPU machine."""
    for var in SLURM_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)

    def make(affinity: int | None) -> None:
        if affinity is None:
            monkeypatch.delattr(os, "sched_getaffinity", raising=False)
        else:
            monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(affinity)))

    return make


def test_outside_slurm_the_affinity_mask_counts(node) -> None:
    node(6)
    assert allocated_cpus() == 6


def test_without_an_affinity_call_the_cpu_count(node) -> None:
    node(None)
    assert allocated_cpus() == 64


def test_cpus_per_task(node, monkeypatch: pytest.MonkeyPatch) -> None:
    node(64)  # task/none: the mask shows the whole node
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "16")
    assert allocated_cpus() == 4


@pytest.mark.parametrize(("gpus_env", "expected"), [
    ({"SLURM_GPUS_ON_NODE": "2"}, 16),
    ({"SLURM_GPUS": "2"}, 16),
    ({"SLURM_GPUS": "a100:2"}, 16),
    ({"SLURM_GPUS": "gpu:a100:1"}, 8),
    ({"SLURM_GPUS_ON_NODE": "1", "SLURM_GPUS": "a100:2"}, 8),  # this node's count first
])
def test_cpus_per_gpu_times_the_gpus(node, monkeypatch: pytest.MonkeyPatch,
                                     gpus_env: dict[str, str], expected: int) -> None:
    node(64)
    monkeypatch.setenv("SLURM_CPUS_PER_GPU", "8")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "32")
    for var, value in gpus_env.items():
        monkeypatch.setenv(var, value)
    assert allocated_cpus() == expected


def test_cpus_per_gpu_without_a_gpu_count_falls_back_to_the_node(node, monkeypatch) -> None:
    node(64)
    monkeypatch.setenv("SLURM_CPUS_PER_GPU", "8")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "12")
    assert allocated_cpus() == 12


def test_cpus_on_node(node, monkeypatch: pytest.MonkeyPatch) -> None:
    node(64)
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "3")
    assert allocated_cpus() == 3


def test_the_affinity_mask_caps_the_allocation(node, monkeypatch: pytest.MonkeyPatch) -> None:
    node(2)  # pinned to 2 cores (task/affinity, cgroups) of a larger allocation
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    assert allocated_cpus() == 2


@pytest.mark.parametrize("bad", ["", "0", "-2", "four", " "])
def test_unusable_values_are_skipped(node, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    node(64)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", bad)
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "5")
    assert allocated_cpus() == 5


def test_an_explicit_environment(node) -> None:
    node(64)
    assert allocated_cpus({"SLURM_CPUS_PER_TASK": "7"}) == 7
    assert allocated_cpus({}) == 64


def test_use_allocated_cpus_sets_torch_threads(node, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    node(64)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    before = torch.get_num_threads()
    try:
        assert cpus.use_allocated_cpus() == 3
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
