"""Dataset registry: one declarative :class:`DatasetSpec` per dataset, looked up by id.

Each dataset lives in ``samlora/data/sources/<id>.py``, which defines ``SPEC``. To add a
dataset, write that module, add its id to :data:`SOURCE_MODULES`, and commit its split
file ``samlora/data/splits/<id>.json``.

Splits come from the committed split files (:mod:`samlora.data.split_files`), never from
the reader:

- ``load_split(id) -> SplitFile``: the file's ``convention``, ``description``, ``seed``
  and ``splits`` (``{"train": (case, ...), "val": (...), "test": (...)}``; ``val`` only
  where official); ``SplitFile.assignment(variant=None) -> {case: split}`` (variant
  ``leave_one_out/<k>``, ``sam2lora_random``, ... where the file allows it).
- ``write_seeded_split(id, cases, seed, test_fraction=0.25)``: draw a seeded split once
  and write the file; refuses to overwrite. CLI: ``python -m samlora split --dataset <id>
  --seed 0`` (uses the spec's ``scan`` to list the cases found in the data).
- A reader is called as ``reader(root, assignment)`` with the ``{case: split}`` map of
  the split file and returns one :class:`Record` per case, in that order, with that split,
  naming the files the case must have (paths only; it does not touch the disk).
  :meth:`DatasetSpec.records` checks that the records match the split file.
- A case whose image is absent from the data is an error naming the split file and the
  case, unless a subset is allowed (``data.allow_subset``, e.g. a mirror holding 100 of
  Kvasir-SEG's 1000 images); a subset is recorded in ``source.json`` and ``dataset.json``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from samlora.data.errors import UnknownDatasetError
from samlora.data.labels import Label, LabelReader
from samlora.data.split_files import SplitFile, SplitFileError, load_split

log = logging.getLogger(__name__)

#: Modules under ``samlora.data.sources`` that define a ``SPEC``; one per dataset.
SOURCE_MODULES: tuple[str, ...] = (
    # vessels
    "drive", "stare", "chase_db1", "hrf", "fives",
    # other domains (TopoLoRA-SAM)
    "kvasir_seg", "sl_ssdd",
    # optic disc / cup
    "drishti_gs1", "refuge2", "idrid", "origa", "g1020", "grape", "papila",
)


@dataclass(frozen=True)
class Record:
    """One case of a dataset in its official layout.

    Attributes:
        case: unique case id, ``<dataset>_<native id>`` (e.g. ``drive_21``).
        split: ``train``, ``val`` (where official) or ``test``, from the split file.
        image: the RGB image file.
        mask: the reference (first observer) label file, or None for a case its release
            ships without one (e.g. DRIVE's test set in the current download): such a case
            is prepared with an empty ``mask`` column, predicted, and not scored.
        mask2: the second observer's label file, or None where none is shipped.
        fov: the official field-of-view mask, or None where none is shipped.
        mask_reader, mask2_reader: how ``mask`` / ``mask2`` are decoded
            (:mod:`samlora.data.labels`); None = a binary label image.
        extra: further label kinds of the case (e.g. the cup beside the disc), each with
            its file and reader; prepared into ``masks_<kind>/`` and column ``mask_<kind>``.
    """

    case: str
    split: str
    image: Path
    mask: Path | None
    mask2: Path | None = None
    fov: Path | None = None
    mask_reader: LabelReader | None = None
    mask2_reader: LabelReader | None = None
    extra: tuple[Label, ...] = ()

    def files(self) -> list[Path]:
        """Every file of this case (image, labels, FOV), each once."""
        paths = [self.image, self.mask, self.mask2, self.fov, *(lab.path for lab in self.extra)]
        return list(dict.fromkeys(p for p in paths if p is not None))


@dataclass(frozen=True)
class Archive:
    """One downloadable file of a public dataset.

    Attributes:
        url: http(s) or file URL.
        sha256: published hex SHA-256, or None (then the lock file pins the first one seen).
        into: sub-folder of the extraction folder to extract into ("" = its root), for
            archives without a top folder of their own (STARE's tarballs).
        name: the file name to save it under, for URLs whose last component is no
            file name (figshare's ``ndownloader/files/<number>``); "" = from the URL.
    """

    url: str
    sha256: str | None = None
    into: str = ""
    name: str = ""

    @property
    def filename(self) -> str:
        """The file name the archive is saved under (``name``, else the URL's last part)."""
        if self.name:
            return self.name
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
        unlabelled: why some cases may come without a reference label (which release
            lacks them); quoted where such cases are found, prepared and left unscored.
    """

    homepage: str
    archives: tuple[Archive, ...] = ()
    registration: bool = False
    placement: str = ""
    citation: str = ""
    unlabelled: str = ""


#: ``reader(root, {case: split})`` -> one record per case of the split file, in its order.
Reader = Callable[[Path, Mapping[str, str]], list[Record]]
#: ``scan(root)`` -> case ids found on disk (only used to draw a seeded split file once).
Scanner = Callable[[Path], list[str]]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the pipeline knows about one dataset.

    Attributes:
        id: registry id, also the folder name under ``data/raw`` and ``data/processed``.
        task: ``vessel``, ``disc_cup``, ``polyp`` or ``sea_land``.
        label_kinds: label files shipped per case (``vessel``, ``vessel_2nd_observer``, ...).
        folder: the dataset's folder name inside a mirror (its official archive name).
        source: official origin.
        reader: maps the official layout's root folder and the split file's ``{case: split}``
            to the expected records (paths only; it does not touch the disk, so a missing
            file is found by :func:`missing_files`).
        labels: label map of the prepared masks ((name, value) pairs), as in nnU-Net's dataset.json.
        scan: lists the case ids present under a root; set for datasets whose split is
            drawn by seed (:func:`samlora.data.split_files.write_seeded_split`).
        extra_labels: label kinds besides the primary one that records may carry
            (:attr:`Record.extra`), e.g. ``("cup",)``; each gets an index column
            ``mask_<kind>`` (empty where a case lacks it).
        fov_default: FOV of cases without an official FOV mask: ``computed`` (red-channel
            threshold, for fundus photographs with a dark surround) or ``whole`` (every
            pixel, for disc/cup sets whose images are crops or whose ROI is the image).
    """

    id: str
    task: str
    label_kinds: tuple[str, ...]
    folder: str
    source: Source
    reader: Reader
    labels: tuple[tuple[str, int], ...] = (("background", 0), ("vessel", 1))
    scan: Scanner | None = None
    extra_labels: tuple[str, ...] = ()
    fov_default: str = "computed"

    @property
    def primary_label(self) -> str:
        """The label kind of the ``mask`` column (the first non-background label)."""
        return next(name for name, value in self.labels if value != 0)

    @property
    def split(self) -> SplitFile:
        """The committed split file of this dataset."""
        return load_split(self.id)

    @property
    def split_convention(self) -> str:
        """``<convention>: <description>`` of the split file."""
        return f"{self.split.convention}: {self.split.description}"

    def records(self, root: Path, variant: str | None = None) -> list[Record]:
        """The expected records under ``root``, one per case of the split file.

        Args:
            root: the official layout's root folder.
            variant: None, or a split variant the split file allows (``leave_one_out/<k>``,
                ``sam2lora_random``, ...).

        Raises:
            SplitFileError: no or a malformed split file, or the reader's records disagree
                with it (a reader bug).
        """
        assignment = self.split.assignment(variant)
        recs = self.reader(Path(root), assignment)
        got = {r.case: r.split for r in recs}
        if len(got) != len(recs):
            raise SplitFileError(f"{self.id}: reader returned duplicate case ids")
        if got != assignment:
            wrong = sorted(set(got.items()) ^ set(assignment.items()))[:3]
            raise SplitFileError(f"{self.id}: reader records disagree with the split file "
                                 f"{self.split.path} (e.g. {wrong})")
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


def native_id(dataset: str, case: str) -> str:
    """The dataset's own id of ``case`` (``native_id("drive", "drive_21") == "21"``)."""
    prefix = f"{dataset}_"
    if not case.startswith(prefix):
        raise ValueError(f"case id {case!r} does not start with {prefix!r}")
    return case[len(prefix):]


def image_scanner(dataset: str, folder: str, pattern: str = "*.jpg") -> Scanner:
    """A ``scan`` listing ``<dataset>_<stem>`` for the files matching ``pattern`` in
    ``root/folder``, sorted."""

    def scan(root: Path) -> list[str]:
        return sorted(f"{dataset}_{p.stem}" for p in (Path(root) / folder).glob(pattern))

    return scan


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
