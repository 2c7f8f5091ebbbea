"""Dataset registry: one declarative :class:`DatasetSpec` per dataset, looked up by id.

Each dataset lives in ``samlora/data/sources/<id>.py``, which defines ``SPEC``. To add a
dataset, write that module and add its id to :data:`SOURCE_MODULES`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from samlora.data.errors import UnknownDatasetError

log = logging.getLogger(__name__)

#: Modules under ``samlora.data.sources`` that define a ``SPEC``; one per dataset.
SOURCE_MODULES: tuple[str, ...] = ("drive", "chase_db1")

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Record:
    """One case of a dataset in its official layout.

    Attributes:
        case: unique case id, ``<dataset>_<native id>`` (e.g. ``drive_21``).
        split: ``train`` or ``test``.
        image: the RGB image file.
        mask: the reference (first observer) label file.
        mask2: the second observer's label file, or None where none is shipped.
        fov: the official field-of-view mask, or None where none is shipped.
    """

    case: str
    split: str
    image: Path
    mask: Path
    mask2: Path | None = None
    fov: Path | None = None

    def files(self) -> list[Path]:
        """Every file of this case (image, labels, FOV)."""
        return [p for p in (self.image, self.mask, self.mask2, self.fov) if p is not None]


@dataclass(frozen=True)
class Archive:
    """One downloadable file of a public dataset.

    Attributes:
        url: http(s) or file URL.
        sha256: published hex SHA-256, or None (then the lock file pins the first one seen).
    """

    url: str
    sha256: str | None = None

    @property
    def filename(self) -> str:
        """The file name the archive is saved under (last component of the URL path)."""
        name = PurePosixPath(unquote(urlparse(self.url).path)).name
        if not name:
            raise ValueError(f"archive URL {self.url!r} has no file name")
        return name


@dataclass(frozen=True)
class Source:
    """Where a dataset officially comes from.

    Attributes:
        homepage: the official page (cite it; registration happens there where needed).
        archives: public archives to download; empty for registration-only datasets.
        registration: True when the data can only be had after registering at ``homepage``.
        placement: for registration-only datasets, what the user puts in ``raw_dir/<id>/``
            (the archive names accepted); the expected tree is derived from the reader.
        citation: the paper to cite.
    """

    homepage: str
    archives: tuple[Archive, ...] = ()
    registration: bool = False
    placement: str = ""
    citation: str = ""


Reader = Callable[[Path], list[Record]]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the pipeline knows about one dataset.

    Attributes:
        id: registry id, also the folder name under ``data/raw`` and ``data/processed``.
        task: ``vessel`` (later: ``disc_cup``, ``polyp``, ``ship``).
        label_kinds: label files shipped per case (``vessel``, ``vessel_2nd_observer``, ...).
        folder: the dataset's folder name inside a mirror (its official archive name).
        source: official origin.
        reader: maps the official layout's root folder to the expected records (paths only;
            it does not touch the disk, so a missing file is found by :func:`missing_files`).
        split_convention: name and description of the train/test split the reader assigns.
        labels: label map of the prepared masks ((name, value) pairs), as in nnU-Net's dataset.json.
    """

    id: str
    task: str
    label_kinds: tuple[str, ...]
    folder: str
    source: Source
    reader: Reader
    split_convention: str
    labels: tuple[tuple[str, int], ...] = (("background", 0), ("vessel", 1))

    def records(self, root: Path) -> list[Record]:
        """The expected records under ``root``, with their splits checked."""
        recs = self.reader(Path(root))
        bad = sorted({r.split for r in recs} - set(SPLITS))
        if bad:
            raise ValueError(f"{self.id}: reader returned unknown split(s) {bad}")
        cases = [r.case for r in recs]
        if len(set(cases)) != len(cases):
            raise ValueError(f"{self.id}: reader returned duplicate case ids")
        return recs


_REGISTRY: dict[str, DatasetSpec] = {}


def _registry() -> dict[str, DatasetSpec]:
    """Import the source modules once (lazily: they import this module's dataclasses)."""
    if not _REGISTRY:
        for name in SOURCE_MODULES:
            spec = importlib.import_module(f"samlora.data.sources.{name}").SPEC
            _REGISTRY[spec.id] = spec
    return _REGISTRY


def dataset_ids() -> list[str]:
    """Ids of all registered datasets, sorted."""
    return sorted(_registry())


def get_dataset(name: str) -> DatasetSpec:
    """The spec of dataset ``name``.

    Raises:
        UnknownDatasetError: (a ``KeyError``) ``name`` is not registered; lists known ids.
    """
    try:
        return _registry()[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(dataset_ids())}") from None


def missing_files(records: Sequence[Record]) -> list[Path]:
    """Files named by ``records`` that do not exist, in record order."""
    return [p for r in records for p in r.files() if not p.is_file()]


def describe_layout(spec: DatasetSpec, root: Path = Path(".")) -> str:
    """The expected tree under ``root``, one line per folder and file kind (first … last)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for rec in spec.records(root):
        for kind, p in (("image", rec.image), ("mask", rec.mask), ("mask2", rec.mask2),
                        ("fov", rec.fov)):
            if p is not None:
                groups.setdefault((str(p.parent), kind), []).append(p.name)
    lines = []
    for (folder, _), names in groups.items():
        names = sorted(names)
        span = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
        lines.append(f"  {folder}/{span}  ({len(names)} files)")
    return "\n".join(lines)
