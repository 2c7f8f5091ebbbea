"""Segment a folder of unlabelled fundus images with a trained run (prompt-free, native size).

For every image file of the folder (sorted by name) :func:`predict_images` writes

- ``probs/<stem>.png``: the 16-bit probability map at the image's native size, through the
  same resize/pad and unresize path as :func:`samlora.evaluation.predict.predict_dataset`;
- ``masks/<stem>.png``: 0/255, probability (as stored in ``probs/``) at or above the
  threshold and inside the FOV;
- ``fov/<stem>.png``: 0/255, the FOV mask given in ``fov_dir`` or else computed from the
  image with the ``data.fov`` parameters (see :func:`samlora.data.fov.compute_fov`);

and ``predictions.json`` last, listing the cases, the files that failed and the run. An
image that cannot be read is logged as one line and listed; the others are still written,
then :class:`ImagesFailedError` is raised.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samlora.data.arrays import MAT_SUFFIXES, NIFTI_SUFFIXES
from samlora.data.errors import ImageReadError, SizeMismatchError
from samlora.data.io import IMAGE_SUFFIXES, mask_to_uint8, read_image, read_mask, write_png
from samlora.evaluation.predict import PREDICTIONS, load_run, publish
from samlora.training.progress import progress
from samlora.utils.io import make_temp_dir, read_prob_png, write_prob_png

log = logging.getLogger(__name__)

#: Output folders, one PNG per case in each.
FOLDERS = ("probs", "masks", "fov")
#: Name endings the readers know, longest first (``.tif.gz`` before ``.gz``-less ones).
SUFFIXES = tuple(sorted({*IMAGE_SUFFIXES, *(s + ".gz" for s in IMAGE_SUFFIXES),
                         *NIFTI_SUFFIXES, *MAT_SUFFIXES}, key=len, reverse=True))
#: Errors of reading one image or its FOV: that case fails, the others go on.
READ_ERRORS = (ImageReadError, SizeMismatchError, OSError, ValueError)


class ImagesFailedError(ValueError):
    """Some images could not be read; the others' outputs were written (see ``record``)."""

    def __init__(self, message: str, record: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.record = dict(record)


def image_stem(path: Path) -> str | None:
    """The case name of an image file (its name less a known suffix), None if not one."""
    name = path.name
    lower = name.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def list_images(folder: Path, what: str = "images") -> dict[str, Path]:
    """``{stem: file}`` of the image files directly in ``folder``, sorted by stem.

    Hidden files and files of other suffixes are skipped (and counted in the log).

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        ValueError: two files share a stem (``a.png`` and ``a.tif``), or none is an image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: {what} folder not found")
    found: dict[str, Path] = {}
    skipped = 0
    for path in sorted(folder.iterdir()):
        stem = None if path.name.startswith(".") or not path.is_file() else image_stem(path)
        if stem is None:
            skipped += 1
            continue
        if stem in found:
            raise ValueError(f"{folder}: {found[stem].name} and {path.name} share the name "
                             f"{stem!r}; their outputs would collide: rename one")
        found[stem] = path
    if skipped:
        log.info("%s: skipped %d entries that are not image files (%s)", folder, skipped,
                 " ".join(IMAGE_SUFFIXES))
    if not found and what == "images":
        raise ValueError(f"{folder}: no image files ({' '.join(IMAGE_SUFFIXES)}, also "
                         "gzipped, NIfTI, .mat)")
    return dict(sorted(found.items()))


def _read_case(path: Path, fov_path: Path | None,
               fov_cfg: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image H×W×3 uint8, FOV H×W bool): the given FOV mask, or the computed one."""
    from samlora.data.fov import compute_fov

    image = read_image(path)
    if fov_path is None:
        return image, compute_fov(image, float(fov_cfg["red_threshold"]),
                                  int(fov_cfg["radius"]))
    fov = read_mask(fov_path)
    if fov.shape != image.shape[:2]:
        raise SizeMismatchError(f"{fov_path}: FOV mask is {fov.shape[1]}×{fov.shape[0]} px, "
                                f"its image {path.name} {image.shape[1]}×{image.shape[0]}")
    return image, fov


def _describe(err: BaseException, path: Path) -> str:
    """One line naming ``path``: what is wrong with it (not the dataset-release remedy)."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, OSError) and err.strerror:
        text = f"{err.filename or path}: {err.strerror}"
    text = text.partition("; replace it with the file from")[0]
    return text if str(path) in text or path.name in text else f"{path}: {text}"


@torch.no_grad()
def predict_images(run_dir: Path, images_dir: Path, out_dir: Path, models_dir: Path,
                   fov_cfg: Mapping[str, Any], threshold: float,
                   fov_dir: Path | None = None, device: str = "auto",
                   config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Segment every image file of ``images_dir`` with a trained run, prompt-free.

    Args:
        run_dir: a training run folder (config.yaml, adapter.safetensors).
        images_dir: folder of fundus images in any format the readers know.
        out_dir: folder for ``probs/``, ``masks/``, ``fov/`` and ``predictions.json``.
        fov_cfg: ``data.fov`` (``red_threshold``, ``radius``) for the computed FOV.
        threshold: ``evaluate.threshold``; a mask pixel is the stored probability >= it.
        fov_dir: folder of ``<stem>`` FOV masks; None = compute every FOV.
        config: the step's resolved config, written as ``predict_config.yaml`` (None: not).

    The outputs are written under a temporary folder and swapped in at the end: a failed
    or killed step leaves the previous outputs or none, never a mix.

    Returns:
        The ``predictions.json`` record.

    Raises:
        ImagesFailedError: some images (or FOV masks) could not be read; the others'
            outputs and ``predictions.json`` were written first.
        ValueError: none could be read (nothing is written).
    """
    from samlora.data.geometry import geometry_for
    from samlora.data.transforms import unresize
    from samlora.training.loop import pick_device

    images_dir, out_dir = Path(images_dir), Path(out_dir)
    files = list_images(images_dir)  # before the (slow) model build
    fovs = None if fov_dir is None else list_images(Path(fov_dir), "FOV")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"evaluate.threshold must lie in [0, 1], got {threshold}")
    if fov_dir is None and not 0.0 < float(fov_cfg["red_threshold"]) < 1.0:
        raise ValueError("data.fov.red_threshold must lie in (0, 1), got "
                         f"{fov_cfg['red_threshold']}")
    dev = pick_device(device)
    model, rc = load_run(Path(run_dir), Path(models_dir), dev)
    geometry = geometry_for(rc["method_cfg"].get("geometry"), None)  # unknown source
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob(".images-tmp-*"),
                  *(p for f in FOLDERS for p in out_dir.glob(f".{f}-old-*"))]:
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed predict into this folder
    staging = make_temp_dir(out_dir, ".images-tmp-")
    cases: list[str] = []
    failures: list[dict[str, str]] = []
    try:
        for folder in FOLDERS:
            (staging / folder).mkdir()
        for stem, path in progress(files.items(), len(files), f"predict {images_dir.name}"):
            try:
                fov_path = None if fovs is None else fovs.get(stem)
                if fovs is not None and fov_path is None:
                    raise FileNotFoundError(f"{path}: no FOV mask {stem}.* in {fov_dir}")
                image, fov = _read_case(path, fov_path, fov_cfg)
            except READ_ERRORS as err:
                message = _describe(err, path)
                log.error("%s", message)
                failures.append({"file": path.name, "error": message})
                continue
            tensors, meta = geometry.apply(image, None, None, model.img_size)
            prob = torch.sigmoid(model(tensors["image"][None].to(dev))).float().cpu().numpy()
            write_prob_png(staging / "probs" / f"{stem}.png", unresize(prob[0, 0], meta))
            stored = read_prob_png(staging / "probs" / f"{stem}.png")  # as evaluate reads it
            write_png(staging / "masks" / f"{stem}.png",
                      mask_to_uint8((stored >= float(threshold)) & fov))
            write_png(staging / "fov" / f"{stem}.png", mask_to_uint8(fov))
            cases.append(stem)
        if not cases:
            raise ValueError(f"{images_dir}: none of the {len(files)} image files could be "
                             f"read (first: {failures[0]['error']})")
        record = {"run": str(run_dir), "images": str(images_dir), "cases": cases,
                  "files": {s: files[s].name for s in cases}, "failures": failures,
                  "fov": "computed" if fov_dir is None else str(fov_dir),
                  "fov_params": {"red_threshold": float(fov_cfg["red_threshold"]),
                                 "radius": int(fov_cfg["radius"])},
                  "threshold": float(threshold), "prompt_modes": ["none"],
                  "method": rc["method"], "train_set": rc["train_set"], "seed": rc["seed"],
                  "target": rc.get("target"), "run_name": rc.get("name"),
                  "selected": rc.get("selected"), "run_hash": rc.get("run_hash")}
        publish(out_dir, staging, FOLDERS, record, config, stale=("predict_config.yaml",))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %d of %d predictions to %s", len(cases), len(files), out_dir)
    if failures:
        raise ImagesFailedError(
            f"{images_dir}: {len(failures)} of {len(files)} image files could not be read "
            f"({', '.join(f['file'] for f in failures[:5])}"
            f"{', …' if len(failures) > 5 else ''}); the other {len(cases)} were written, "
            f"failures listed in {out_dir / PREDICTIONS}", record)
    return record
