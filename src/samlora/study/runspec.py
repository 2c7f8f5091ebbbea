"""A training run as one typed, frozen object: what defines it, its identity, its folders.

A :class:`RunSpec` is built from params.yaml by :mod:`samlora.study.studies` (or, for a
one-off ``train`` command, by :func:`single_run`) and is what every step takes: the
Snakemake input functions, train, predict, evaluate and aggregate. Its name is readable
and stable across edits of its settings (``topolora_sam-r4__drive__seed0``); its
:attr:`~RunSpec.config_hash` changes with every setting that can change the weights, so
two studies asking for the same run share one folder and train it once, and an edited run
never resumes the old one (see :mod:`samlora.training.identity`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Sampling of a union's training batches: proportional to member size (one shuffled
#: union, as SAM2LoRA does) or balanced (each member drawn equally often).
SAMPLING = ("proportional", "balanced")
RUNS_DIR = Path("runs")
RESULTS_DIR = Path("results") / "runs"


def _frozen(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class RunSpec:
    """One training run.

    Attributes:
        method: the method's name as studies see it (a sweep variant's derived name,
            e.g. ``topolora_sam-r4``).
        base_method: the params.yaml method it derives from (``topolora_sam``).
        method_json: the resolved method config (sweep values applied), as JSON.
        backbone: backbone id.
        backbone_json: the backbone config, as JSON.
        train_json: the resolved train settings (global ``train`` block, then the method's
            own ``train`` overrides), as JSON.
        train_sets: the prepared datasets whose train splits it trains on (one, or the
            members of a union, sorted).
        train_name: the train set's readable name: the dataset id, or the union's name.
        target: the label kind it segments (``vessel``, ``disc``, ``cup``); a protocol that
            names none gets its train sets' primary label.
        seed: the run seed.
        sampling: how a union's batches are drawn (:data:`SAMPLING`).
        processed_dir: the folder of prepared datasets.
    """

    method: str
    base_method: str
    method_json: str
    backbone: str
    backbone_json: str
    train_json: str
    train_sets: tuple[str, ...]
    train_name: str
    target: str
    seed: int
    sampling: str = "proportional"
    processed_dir: str = "data/processed"

    def __post_init__(self) -> None:
        if not self.train_sets:
            raise ValueError(f"run {self.method}: no train set")
        if self.sampling not in SAMPLING:
            raise ValueError(f"run {self.method}: sampling {self.sampling!r} is not one of "
                             f"{list(SAMPLING)}")

    # --- what defines it ---------------------------------------------------------------
    @property
    def method_cfg(self) -> dict[str, Any]:
        """The resolved method config (a fresh copy)."""
        return json.loads(self.method_json)

    @property
    def backbone_cfg(self) -> dict[str, Any]:
        return json.loads(self.backbone_json)

    @property
    def train(self) -> dict[str, Any]:
        """The resolved train settings (a fresh copy)."""
        return json.loads(self.train_json)

    @property
    def is_union(self) -> bool:
        return len(self.train_sets) > 1

    def processed(self, dataset: str) -> Path:
        """The prepared folder of one dataset."""
        return Path(self.processed_dir) / dataset

    # --- identity ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Readable, stable folder name: ``<method>__<train>[__<target>]__seed<k>``; the
        target is left out where it is the train sets' primary label."""
        plain = self.target is None or all(primary_label(d) == self.target
                                           for d in self.train_sets)
        target = "" if plain else f"__{self.target}"
        return f"{self.method}__{self.train_name}{target}__seed{self.seed}"

    def config(self) -> dict[str, Any]:
        """Everything that defines the run, as saved in its ``config.yaml``."""
        return {
            "name": self.name, "method": self.method, "base_method": self.base_method,
            "train_set": self.train_name, "train_sets": list(self.train_sets),
            "target": self.target, "seed": self.seed, "sampling": self.sampling,
            "method_cfg": self.method_cfg, "backbone": self.backbone,
            "backbone_cfg": self.backbone_cfg, "train": self.train,
            "data": {"processed_dir": self.processed_dir},
        }

    @property
    def config_hash(self) -> str:
        """SHA-256 of the weight-defining config (the training data is added at train time,
        see :func:`samlora.training.identity.run_hash`)."""
        from samlora.training.identity import weight_defining

        return hashlib.sha256(_frozen(weight_defining(self.config())).encode()).hexdigest()

    # --- where it lives ----------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return RUNS_DIR / self.name

    def result_dir(self, test_set: str) -> Path:
        """Predictions and per-image metrics of this run on one test set."""
        return RESULTS_DIR / self.name / test_set


@functools.lru_cache(maxsize=None)
def primary_label(dataset: str) -> str:
    """The label kind of a registered dataset's ``mask`` column (``vessel``, ``disc``)."""
    from samlora.data.registry import get_dataset

    return get_dataset(dataset).primary_label


def label_kind(dataset: str, target: str | None) -> str | None:
    """The ``label`` to read ``dataset`` with for ``target``: None for its primary label."""
    if target is None or dataset not in _registered() or primary_label(dataset) == target:
        return None
    return target


@functools.lru_cache(maxsize=1)
def _registered() -> frozenset[str]:
    from samlora.data.registry import dataset_ids

    return frozenset(dataset_ids())


def resolve_target(train_sets: tuple[str, ...], target: str | None) -> str:
    """The label kind a run segments: ``target``, or its train sets' shared primary label.

    Raises:
        ValueError: no target is given and the members' primary labels differ.
    """
    if target is not None:
        return target
    kinds = {primary_label(d) for d in train_sets}
    if len(kinds) != 1:
        raise ValueError(f"train sets {list(train_sets)} have different primary labels "
                         f"{sorted(kinds)}: name the protocol's target")
    return kinds.pop()


def make_spec(method: str, base_method: str, method_cfg: Mapping[str, Any],
              backbone_cfg: Mapping[str, Any], train: Mapping[str, Any],
              train_sets: tuple[str, ...] | list[str], train_name: str | None,
              target: str | None, seed: int, sampling: str = "proportional",
              processed_dir: str = "data/processed") -> RunSpec:
    """A :class:`RunSpec` from plain config sections."""
    from samlora.data.geometry import model_backbone

    members = tuple(sorted(dict.fromkeys(train_sets)))
    target = resolve_target(members, target)
    backbone_cfg = model_backbone(method_cfg, backbone_cfg, members)
    return RunSpec(method=method, base_method=base_method, method_json=_frozen(method_cfg),
                   backbone=str(method_cfg["backbone"]), backbone_json=_frozen(backbone_cfg),
                   train_json=_frozen(train), train_sets=members,
                   train_name=train_name or "+".join(members), target=target, seed=int(seed),
                   sampling=sampling, processed_dir=str(processed_dir))


def from_config(rc: Mapping[str, Any]) -> RunSpec:
    """Rebuild the :class:`RunSpec` a run folder's ``config.yaml`` records.

    Older run configs (a single ``train_set``, no ``train_sets``) are read as single-set runs.
    """
    sets = rc.get("train_sets") or [rc["train_set"]]
    return make_spec(rc["method"], rc.get("base_method", rc["method"]), rc["method_cfg"],
                     rc["backbone_cfg"], rc.get("train", {}), sets, rc.get("train_set"),
                     rc.get("target"), rc["seed"], rc.get("sampling", "proportional"),
                     (rc.get("data") or {}).get("processed_dir", "data/processed"))
