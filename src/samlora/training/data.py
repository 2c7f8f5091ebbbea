"""A run's training and validation data: one prepared dataset or the union of several.

Each member contributes its train split; validation is carved from each member by the
run seed (or is the member's official validation split, REFUGE's). A union's batches are
drawn proportionally to member size (one shuffled union) or balanced per member (each
member drawn equally often, with replacement), from a generator seeded by run seed and
epoch, so the order is as reproducible as a single dataset's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, WeightedRandomSampler

from samlora.data.geometry import geometry_for
from samlora.data.datasets import SegmentationDataset, carve_val
from samlora.study.runspec import RunSpec, label_kind

log = logging.getLogger(__name__)


class UnionDataset(ConcatDataset):
    """Members of a union in one dataset; :meth:`set_epoch` reaches every member."""

    def set_epoch(self, epoch: int) -> None:
        for ds in self.datasets:
            ds.set_epoch(epoch)

    @property
    def cases(self) -> list[str]:
        return [c for ds in self.datasets for c in ds.cases]


def _member_cases(processed: Path, val_fraction: float, seed: int) -> tuple[list[str],
                                                                            list[str]]:
    index = pd.read_csv(processed / "index.csv", dtype={"case": str}, keep_default_na=False)
    cases = sorted(index.loc[index["split"] == "train", "case"])
    official_val = sorted(index.loc[index["split"] == "val", "case"])
    if official_val:  # the split file has an official validation split (REFUGE2)
        return cases, official_val
    return carve_val(cases, val_fraction, seed)


def run_datasets(spec: RunSpec, size: int) -> tuple[Dataset, Dataset | None]:
    """(train, validation) datasets of ``spec`` at model input side ``size``."""
    train, val = [], []
    aug = spec.train["augment"]
    for k, member in enumerate(spec.train_sets):
        processed = spec.processed(member)
        train_cases, val_cases = _member_cases(processed, spec.train["val_fraction"], spec.seed)
        log.info("%s: train on %d cases, validate on %d", member, len(train_cases),
                 len(val_cases))
        label = label_kind(member, spec.target)
        geometry = geometry_for(spec.method_cfg.get("geometry"), member)
        train.append(SegmentationDataset(processed, cases=None, size=size, augment=aug,
                                         seed=spec.seed, label=label, stream=k,
                                         geometry=geometry)
                     .restricted(train_cases))
        if val_cases:
            val.append(SegmentationDataset(processed, cases=None, size=size, label=label,
                                           geometry=geometry)
                       .restricted(val_cases))
    if len(train) == 1:
        return train[0], (val[0] if val else None)
    return UnionDataset(train), (UnionDataset(val) if val else None)


def train_loader(ds: Dataset, spec: RunSpec, epoch: int) -> DataLoader:
    """The epoch's shuffled (or balanced) loader of the training data."""
    gen = torch.Generator().manual_seed(spec.seed * 100_003 + epoch)
    common = {"batch_size": spec.train["batch_size"], "num_workers": spec.train["num_workers"],
              "generator": gen, "persistent_workers": False}
    if spec.sampling == "balanced" and isinstance(ds, UnionDataset):
        weights = torch.cat([torch.full((len(m),), 1.0 / len(m)) for m in ds.datasets])
        sampler = WeightedRandomSampler(weights.double(), num_samples=len(ds),
                                        replacement=True, generator=gen)
        return DataLoader(ds, sampler=sampler, **common)
    return DataLoader(ds, shuffle=True, **common)


def eval_loader(ds: Dataset, spec: RunSpec) -> DataLoader:
    """The un-shuffled, un-augmented validation loader."""
    return DataLoader(ds, batch_size=spec.train["batch_size"], shuffle=False,
                      num_workers=spec.train["num_workers"], persistent_workers=False)


def check_prepared(spec: RunSpec, needed: bool) -> None:
    """Every member is a registered dataset and (when ``needed``) prepared: an error before
    any model is built."""
    from samlora.data.registry import get_dataset

    for member in spec.train_sets:
        get_dataset(member)
        index = spec.processed(member) / "index.csv"
        if needed and not index.is_file():
            raise FileNotFoundError(f"{index}: training set {member!r} is not prepared; run "
                                    f"the prepare step for {member} first")


def data_digest_of(spec: RunSpec) -> str:
    """One digest over every member's prepared index (see training.identity)."""
    import hashlib

    from samlora.training.identity import data_digest

    if not spec.is_union:
        return data_digest(spec.processed(spec.train_sets[0]))
    h = hashlib.sha256()
    for member in spec.train_sets:
        h.update(member.encode() + b"\0" + data_digest(spec.processed(member)).encode())
    return h.hexdigest()
