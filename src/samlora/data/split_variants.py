"""Computed split variants: splits derived from a split file's own cases, never stored.

- ``leave_one_out/<k>``: the k-th of all sorted case ids is the only test case, the others
  train.
- ``labelled_test/<k>``: the sorted ``train`` cases cut into :data:`LABELLED_TEST_FOLDS`
  contiguous blocks; block k is test, the other blocks train, the file's test cases are
  left out (for a release that ships its test set without labels).
- ``sam2lora_random`` (a plain name, no ``/<k>``): SAM2LoRA's random split
  (sayanmndl21/SAM2LoRA, ``dataloader/*.py``): every case of the file, pooled, goes through
  ``sklearn.model_selection.train_test_split(cases, test_size=F, random_state=0)``, with F
  from :data:`SAM2LORA_TEST_FRACTIONS`; sklearn puts ceil(F·n) cases in test. SAM2LoRA
  splits its ``glob`` order, which depends on the filesystem, so the paper's exact cases
  cannot be recovered; samlora applies the same call to the **sorted** case ids, so every
  machine draws the same split.

A split file allows a computed variant only where it declares it under ``variants``
(:mod:`samlora.data.split_files`). The functions here raise :class:`VariantError` (no
file path); the split file adds its path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from types import MappingProxyType

import numpy as np

#: Computed variants taking a fold index (``<name>/<k>``).
FOLD_VARIANTS = ("leave_one_out", "labelled_test")
#: SAM2LoRA's random split (a plain name).
SAM2LORA_RANDOM = "sam2lora_random"
#: Computed variants without a fold index.
PLAIN_VARIANTS = (SAM2LORA_RANDOM,)
#: Every computed variant name.
VARIANTS = FOLD_VARIANTS + PLAIN_VARIANTS
#: Blocks of ``labelled_test``: 4 (20 training cases -> 15 train / 5 test per fold).
LABELLED_TEST_FOLDS = 4
#: SAM2LoRA's ``test_size`` per dataset id (its ``dataloader/*.py``); ``sam2lora_random``
#: exists only for these datasets.
SAM2LORA_TEST_FRACTIONS = MappingProxyType({
    "chase_db1": 0.27, "hrf": 0.27, "stare": 0.25, "origa": 0.25, "g1020": 0.25,
    "grape": 0.25, "papila": 0.25})
#: SAM2LoRA's ``random_state``.
SAM2LORA_SEED = 0


class VariantError(ValueError):
    """A computed variant cannot be drawn (fold out of range, too few cases, no fraction)."""


def split_name(variant: str) -> tuple[str, int | None]:
    """``("leave_one_out", 3)`` for ``leave_one_out/3``, ``(variant, None)`` for a plain name."""
    m = re.fullmatch(r"(\w+)/(\d+)", variant)
    return (m.group(1), int(m.group(2))) if m else (variant, None)


def is_computed(variant: str) -> bool:
    """Whether ``variant`` has the form of a computed variant (``<fold name>/<k>`` or a plain
    computed name)."""
    name, k = split_name(variant)
    return name in FOLD_VARIANTS if k is not None else name in PLAIN_VARIANTS


def leave_one_out(cases: Iterable[str], k: int) -> dict[str, str]:
    """``{case: split}``: the k-th sorted case is test, every other case train."""
    ordered = sorted(cases)
    if k >= len(ordered):
        raise VariantError(f"fold {k} of 'leave_one_out/{k}' out of range "
                           f"(0..{len(ordered) - 1})")
    return {c: "test" if i == k else "train" for i, c in enumerate(ordered)}


def labelled_test(train: Iterable[str], k: int) -> dict[str, str]:
    """``{case: split}`` over the ``train`` cases only: block k of the sorted train cases is
    test, the other blocks train."""
    ordered = sorted(train)
    if len(ordered) < LABELLED_TEST_FOLDS:
        raise VariantError(f"labelled_test needs at least {LABELLED_TEST_FOLDS} train cases, "
                           f"the file has {len(ordered)}")
    if k >= LABELLED_TEST_FOLDS:
        raise VariantError(f"fold {k} of 'labelled_test/{k}' out of range "
                           f"(0..{LABELLED_TEST_FOLDS - 1})")
    blocks = np.array_split(np.array(ordered, dtype=object), LABELLED_TEST_FOLDS)
    return {c: "test" if i == k else "train" for i, block in enumerate(blocks) for c in block}


def sam2lora_random(dataset: str, cases: Iterable[str]) -> dict[str, str]:
    """``{case: split}`` of SAM2LoRA's random split of ``cases`` (every case of the dataset):
    sklearn's ``train_test_split`` with the dataset's test fraction and ``random_state=0``,
    applied to the sorted ids (the paper's glob order is not reproducible)."""
    from sklearn.model_selection import train_test_split

    if dataset not in SAM2LORA_TEST_FRACTIONS:
        raise VariantError(f"{SAM2LORA_RANDOM} has no test fraction for {dataset!r}; SAM2LoRA "
                           f"split only {sorted(SAM2LORA_TEST_FRACTIONS)}")
    ordered = sorted(cases)
    if len(ordered) < 2:
        raise VariantError(f"{SAM2LORA_RANDOM} needs at least 2 cases, got {len(ordered)}")
    _, test = train_test_split(ordered, test_size=SAM2LORA_TEST_FRACTIONS[dataset],
                               random_state=SAM2LORA_SEED)
    picked = set(test)
    return {c: "test" if c in picked else "train" for c in ordered}


def sam2lora_description(dataset: str, n: int) -> str:
    """What a split file says of ``sam2lora_random`` for a dataset of ``n`` cases."""
    test = sum(s == "test" for s in sam2lora_random(dataset, (f"{i:06d}" for i in range(n)))
               .values())
    return (f"SAM2LoRA's random split: sklearn train_test_split(test_size="
            f"{SAM2LORA_TEST_FRACTIONS[dataset]}, random_state={SAM2LORA_SEED}) over all {n} "
            f"case ids, sorted -> {n - test} train / {test} test; SAM2LoRA split its "
            "filesystem-dependent glob order, so the paper's exact cases cannot be recovered")


def compute(variant: str, dataset: str, cases: Sequence[str], train: Sequence[str]
            ) -> dict[str, str]:
    """``{case: split}`` of the computed ``variant`` for a file of ``dataset`` with ``cases``
    (every case) and ``train`` (its train cases).

    Raises:
        VariantError: not a computed variant, or one that cannot be drawn here.
    """
    name, k = split_name(variant)
    if k is None and name == SAM2LORA_RANDOM:
        return sam2lora_random(dataset, cases)
    if k is not None and name == "leave_one_out":
        return leave_one_out(cases, k)
    if k is not None and name == "labelled_test":
        return labelled_test(train, k)
    raise VariantError(f"{variant!r} is not a computed split variant")


def fold_range(name: str, n_cases: int) -> int:
    """The last fold index of the fold variant ``name`` for a file of ``n_cases`` cases."""
    return n_cases - 1 if name == "leave_one_out" else LABELLED_TEST_FOLDS - 1
