"""Committed split files: which case of a dataset is train, val or test.

One JSON file per dataset, ``samlora/data/splits/<id>.json`` (package data)::

    {
      "dataset": "stare",
      "convention": "first10_last10",            # short name, shown by `samlora datasets`
      "description": "first 10 ids by id order = train, last 10 = test; ...",
      "seed": null,                              # the seed of a seeded split, else null
      "splits": {"train": ["stare_0001", ...], "test": [...]},   # "val" where official
      "variants": {"leave_one_out": "each case is the test set once"},  # optional
      "variant_splits": {"set_a_b": {"train": [...], "test": [...]}}     # optional
    }

Computed variants (:mod:`samlora.data.split_variants`), allowed where ``variants`` declares
them: ``leave_one_out/<k>`` (the k-th sorted case is the only test case); ``labelled_test/<k>``
(block k of 4 of the sorted ``train`` cases is test, e.g. DRIVE's 21-25, 26-30, ...; the
file's test cases are left out, for a release without test labels); ``sam2lora_random`` (no
``/<k>``, only for SAM2LoRA's datasets): sklearn's ``train_test_split(test_size=F,
random_state=0)`` over all the file's cases, **sorted** (SAM2LoRA split its filesystem glob
order, which cannot be recovered; sorting makes every machine draw the same split).

Recorded variants (a plain name, e.g. ORIGA's ``set_a_b``) are splits a dataset publishes
with its data: listed under ``variant_splits`` (each re-partitions exactly the file's
cases) and described under ``variants``; ``null`` until :func:`record_variant` writes
them once from a copy of the data (the file is then committed).

Case ids are the registry's ``<dataset>_<native id>``. A split file is the single source
of a dataset's split: the reader builds its records from these ids, so a case the file
names but the data lacks is reported (naming the file and the case), and a split is never
redrawn silently. Seeded splits (no official one) are drawn once by
:func:`write_seeded_split` (CLI: ``python -m samlora split --dataset <id> --seed 0``), which
refuses to overwrite an existing file. The validation subset of training is carved later,
by seed, from ``train`` (:func:`samlora.data.datasets.carve_val`) unless the file has an
official ``val`` split.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samlora.data.split_variants import (
    FOLD_VARIANTS,
    PLAIN_VARIANTS,
    SAM2LORA_RANDOM,
    SAM2LORA_TEST_FRACTIONS,
    VARIANTS,
    VariantError,
    compute,
    fold_range,
    is_computed,
    sam2lora_description,
    split_name,
)
from samlora.utils.io import atomic_path

log = logging.getLogger(__name__)

#: Split names a split file may hold, in index order.
SPLIT_NAMES = ("train", "val", "test")
#: Folder of the committed split files.
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
_KEYS = {"dataset", "convention", "description", "seed", "splits", "variants",
         "variant_splits"}


class SplitFileError(ValueError):
    """A split file is missing, malformed, or disagrees with the dataset's data."""


@dataclass(frozen=True)
class SplitFile:
    """A dataset's committed split.

    Attributes:
        dataset: registry id.
        convention: short name of the split convention (``official``, ``seeded_75_25``, ...).
        description: one or two sentences on how the split was made and which annotator
            is the reference.
        splits: ``{split name: case ids}`` in the order of :data:`SPLIT_NAMES`.
        seed: the seed that drew a seeded split, else None.
        variants: alternative splits the file allows (name -> description).
        path: the file it was read from.
        recorded: the recorded variants' splits (name -> ``{split: case ids}``, or None
            while declared but not yet recorded).
    """

    dataset: str
    convention: str
    description: str
    splits: dict[str, tuple[str, ...]]
    seed: int | None = None
    variants: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    recorded: dict[str, dict[str, tuple[str, ...]] | None] = field(default_factory=dict)

    @property
    def cases(self) -> list[str]:
        """Every case id, split by split in :data:`SPLIT_NAMES` order."""
        return [c for name in SPLIT_NAMES for c in self.splits.get(name, ())]

    def counts(self) -> dict[str, int]:
        """Cases per split (only the splits the file has)."""
        return {name: len(ids) for name, ids in self.splits.items()}

    def assignment(self, variant: str | None = None) -> dict[str, str]:
        """``{case: split}`` of the default split, or of ``variant``.

        Args:
            variant: None for the file's split, a recorded variant, or a computed one
                (``leave_one_out/<k>``, ``labelled_test/<k>``, ``sam2lora_random``: see
                :mod:`samlora.data.split_variants`); the file must list its name among
                its variants.

        Raises:
            SplitFileError: unknown variant or fold index.
        """
        if variant is None:
            return {c: name for name in SPLIT_NAMES for c in self.splits.get(name, ())}
        if variant in self.recorded:
            return self._recorded(variant)
        if not is_computed(variant) or split_name(variant)[0] not in self.variants:
            names = [f"{v}/<k>" if v in FOLD_VARIANTS else v for v in self.variants]
            raise SplitFileError(f"{self.path}: unknown split variant {variant!r}; this file "
                                 f"allows {names}")
        try:
            return compute(variant, self.dataset, sorted(self.cases),
                           self.splits.get("train", ()))
        except VariantError as err:
            raise SplitFileError(f"{self.path}: {err}") from None

    def _recorded(self, variant: str) -> dict[str, str]:
        """``{case: split}`` of a recorded variant."""
        splits = self.recorded[variant]
        if splits is None:
            raise SplitFileError(f"{self.path}: split variant {variant!r} is declared but not "
                                 f"recorded yet ({self.variants.get(variant, '')})")
        return {c: name for name in SPLIT_NAMES for c in splits.get(name, ())}

    def allowed_variants(self) -> list[str]:
        """The variant names :meth:`assignment` accepts, one pattern per kind
        (``leave_one_out/<k>, k = 0..19``, ``sam2lora_random``); empty when the file allows
        none."""
        return [f"{v}/<k>, k = 0..{fold_range(v, len(self.cases))}" for v in self.variants
                if v in FOLD_VARIANTS] + [v for v in self.variants if v in PLAIN_VARIANTS] + \
            [v if s is not None else f"{v} (once recorded)" for v, s in self.recorded.items()]


def split_path(dataset: str, splits_dir: Path | None = None) -> Path:
    """Where the split file of ``dataset`` lives (``splits_dir`` default: :data:`SPLITS_DIR`)."""
    return Path(splits_dir or SPLITS_DIR) / f"{dataset}.json"


def _fail(path: Path, what: str) -> SplitFileError:
    return SplitFileError(f"split file {path}: {what}")


def parse_split(path: Path) -> SplitFile:
    """Read and check one split file.

    Raises:
        SplitFileError: not found, not JSON, unknown or missing keys, unknown split names,
            a case listed twice, no case at all, or ``sam2lora_random`` declared for a
            dataset SAM2LoRA did not split (the message names the file and key).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise _fail(path, "expected a JSON object")
    if unknown := sorted(set(data) - _KEYS):
        raise _fail(path, f"unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    for key in ("dataset", "convention", "description", "splits"):
        if key not in data:
            raise _fail(path, f"missing key {key!r}")
    splits = data["splits"]
    if not isinstance(splits, dict) or not splits:
        raise _fail(path, "'splits' must map split names to lists of case ids")
    if bad := sorted(set(splits) - set(SPLIT_NAMES)):
        raise _fail(path, f"unknown split name(s) {bad}; allowed: {list(SPLIT_NAMES)}")
    seen: dict[str, str] = {}
    for name, ids in splits.items():
        if not isinstance(ids, list) or not all(isinstance(c, str) for c in ids):
            raise _fail(path, f"splits.{name} must be a list of case-id strings")
        for case in ids:
            if case in seen:
                raise _fail(path, f"case {case!r} is listed in splits.{seen[case]} and "
                                  f"splits.{name}")
            seen[case] = name
    if not seen:
        raise _fail(path, "lists no case")
    prefix = f"{data['dataset']}_"
    if stray := [c for c in seen if not c.startswith(prefix)]:
        raise _fail(path, f"case id(s) {stray[:3]} do not start with {prefix!r}")
    variants = data.get("variants") or {}
    recorded = _parse_recorded(path, data.get("variant_splits") or {}, variants, set(seen))
    if bad := sorted(set(variants) - set(VARIANTS) - set(recorded)):
        raise _fail(path, f"unknown variant(s) {bad}; known: {list(VARIANTS)} or one listed "
                          "under variant_splits")
    if SAM2LORA_RANDOM in variants and data["dataset"] not in SAM2LORA_TEST_FRACTIONS:
        raise _fail(path, f"variants.{SAM2LORA_RANDOM}: SAM2LoRA split only "
                          f"{sorted(SAM2LORA_TEST_FRACTIONS)}, not {data['dataset']!r}")
    return SplitFile(
        dataset=data["dataset"], convention=data["convention"], description=data["description"],
        splits={n: tuple(splits[n]) for n in SPLIT_NAMES if n in splits},
        seed=data.get("seed"), variants=dict(variants), path=path, recorded=recorded)


def _parse_recorded(path: Path, listed: object, variants: dict, cases: set[str]
                    ) -> dict[str, dict[str, tuple[str, ...]] | None]:
    """``variant_splits``, checked: each described, null or a split of the file's cases."""
    if not isinstance(listed, dict):
        raise _fail(path, "'variant_splits' must map variant names to splits (or null)")
    out: dict[str, dict[str, tuple[str, ...]] | None] = {}
    for name, splits in listed.items():
        key = f"variant_splits.{name}"
        if name not in variants or name in VARIANTS:
            raise _fail(path, f"{key} needs a description under 'variants' (and a name "
                              f"other than {list(VARIANTS)})")
        if splits is None:
            out[name] = None
            continue
        if not isinstance(splits, dict) or set(splits) - set(SPLIT_NAMES) or not all(
                isinstance(v, list) and all(isinstance(c, str) for c in v)
                for v in splits.values()):
            raise _fail(path, f"{key} must map split names {list(SPLIT_NAMES)} to lists of "
                              "case ids")
        got = [c for v in splits.values() for c in v]
        if len(got) != len(set(got)) or set(got) != cases:
            odd = sorted(set(got) ^ cases)[:3] or "a case listed twice"
            raise _fail(path, f"{key} must split exactly the file's {len(cases)} cases, each "
                              f"once ({len(got)} listed; e.g. {odd})")
        out[name] = {n: tuple(splits[n]) for n in SPLIT_NAMES if n in splits}
    return out


@functools.lru_cache(maxsize=64)
def _cached(path: Path, mtime_ns: int) -> SplitFile:
    return parse_split(path)


def load_split(dataset: str, splits_dir: Path | None = None) -> SplitFile:
    """The committed split of ``dataset`` (cached while the file is unchanged).

    Raises:
        SplitFileError: no split file (the message says how to write a seeded one), or a
            malformed one, or one whose ``dataset`` key is another id.
    """
    path = split_path(dataset, splits_dir)
    if not path.is_file():
        raise SplitFileError(
            f"{dataset}: no split file {path}. Official and conventional splits are committed "
            f"with the package; for a dataset without one, draw a seeded split once with "
            f"`python -m samlora split --dataset {dataset} --seed 0`")
    split = _cached(path, path.stat().st_mtime_ns)
    if split.dataset != dataset:
        raise _fail(path, f"'dataset' is {split.dataset!r}, expected {dataset!r}")
    return split


def check_variant(dataset: str, variant: str | None) -> None:
    """Check that ``variant`` is None or a variant the split file of ``dataset`` allows.

    Raises:
        SplitFileError: the dataset has no split file, or the variant is unknown or out of
            range (the message lists the valid values).
    """
    if variant is None:
        return
    split = load_split(dataset)
    try:
        split.assignment(variant)
    except SplitFileError as err:
        allowed = split.allowed_variants()
        valid = "null (the file's own split)" + (f" or {' or '.join(allowed)}" if allowed
                                                 else "; this split file declares no variants")
        raise SplitFileError(f"{err}; valid values: {valid}") from None


def seeded_split(cases: Sequence[str], seed: int, test_fraction: float = 0.25
                 ) -> dict[str, list[str]]:
    """Draw a train/test split: sort ``cases``, permute with ``default_rng(seed)``.

    ``round(n · test_fraction)`` cases (at least 1, at most n − 1) go to test.

    Returns:
        ``{"train": [...], "test": [...]}``, each sorted.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    ordered = sorted(set(cases))
    if len(ordered) != len(cases):
        raise ValueError("case ids are not unique")
    n = len(ordered)
    if n < 2:
        raise ValueError(f"need at least 2 cases for a train/test split, got {n}")
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    pick = set(np.random.default_rng(seed).permutation(n)[:n_test].tolist())
    return {"train": [c for i, c in enumerate(ordered) if i not in pick],
            "test": [c for i, c in enumerate(ordered) if i in pick]}


def write_split(split: SplitFile, path: Path) -> Path:
    """Write ``split`` to ``path`` atomically; refuse if ``path`` exists.

    Raises:
        FileExistsError: a split file is already there (splits are drawn once).
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"split file {path} already exists; splits are written once "
                              "and never redrawn (delete it yourself to draw a new one)")
    _dump(split, path)
    log.info("wrote split file %s (%s)", path, split.counts())
    return path


def _dump(split: SplitFile, path: Path) -> None:
    """Write ``split`` to ``path`` atomically and check that it reads back."""
    data = {"dataset": split.dataset, "convention": split.convention,
            "description": split.description, "seed": split.seed,
            "splits": {n: list(split.splits[n]) for n in SPLIT_NAMES if n in split.splits}}
    if split.variants:
        data["variants"] = dict(split.variants)
    if split.recorded:
        data["variant_splits"] = {k: None if v is None else {n: list(c) for n, c in v.items()}
                                  for k, v in split.recorded.items()}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    parse_split(path)  # what was written reads back


def record_variant(dataset: str, name: str, splits: dict[str, Sequence[str]],
                   splits_dir: Path | None = None) -> Path:
    """Write ``splits`` (``{split: case ids}``, exactly the file's cases) as the declared
    variant ``name`` of ``splits/<dataset>.json``; the same split again changes nothing.

    Raises:
        SplitFileError: ``name`` is not declared under ``variant_splits``, another split is
            already recorded, or ``splits`` does not cover exactly the file's cases.
    """
    split = load_split(dataset, splits_dir)
    if name not in split.recorded:
        raise SplitFileError(f"{split.path}: declares no recorded variant {name!r} (its "
                             f"variant_splits: {sorted(split.recorded)})")
    new = {n: tuple(splits[n]) for n in SPLIT_NAMES if n in splits}
    if split.recorded[name] == new:
        return split.path
    if split.recorded[name] is not None:
        raise SplitFileError(f"{split.path}: variant {name!r} is already recorded with "
                             f"another split; set variant_splits.{name} to null yourself "
                             "to record it again")
    _parse_recorded(split.path, {name: {k: list(v) for k, v in new.items()}}, split.variants,
                    set(split.cases))  # checked before anything is written
    _dump(dataclasses.replace(split, recorded={**split.recorded, name: new}), split.path)
    log.info("recorded split variant %r in %s", name, split.path)
    return split.path


def write_seeded_split(dataset: str, cases: Sequence[str], seed: int,
                       test_fraction: float = 0.25, splits_dir: Path | None = None,
                       convention: str | None = None, description: str | None = None) -> Path:
    """Draw a seeded train/test split of ``cases`` once and write ``splits/<dataset>.json``.

    Args:
        dataset: registry id; every case must start with ``<dataset>_``.
        cases: every case id of the full dataset.
        seed: numpy Generator seed (recorded in the file).
        test_fraction: share of cases in test (0.25 gives the usual 75/25).
        splits_dir: folder to write to (default: the package's :data:`SPLITS_DIR`).
        convention, description: override the default name ``seeded_<train>_<test>``
            and its description.

    A dataset SAM2LoRA split (:data:`SAM2LORA_TEST_FRACTIONS`) gets the ``sam2lora_random``
    variant declared as well.

    Returns:
        The written path.

    Raises:
        FileExistsError: the dataset already has a split file.
    """
    drawn = seeded_split(cases, seed, test_fraction)
    pct = round(100 * test_fraction)
    split = SplitFile(
        dataset=dataset,
        convention=convention or f"seeded_{100 - pct}_{pct}",
        description=description or (
            f"no official split: {len(drawn['train'])} train / {len(drawn['test'])} test, "
            f"drawn once with numpy default_rng({seed}) over the sorted case ids"),
        splits={k: tuple(v) for k, v in drawn.items()}, seed=int(seed),
        variants={SAM2LORA_RANDOM: sam2lora_description(dataset, len(cases))}
        if dataset in SAM2LORA_TEST_FRACTIONS else {})
    return write_split(split, split_path(dataset, splits_dir))
