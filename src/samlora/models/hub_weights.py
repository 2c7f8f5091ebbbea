"""Baseline pretrained weights from the Hugging Face Hub, fetched once, verified, local.

The baselines' weights (smp's ImageNet encoders, transformers' SegFormer and Mask2Former
checkpoints) come from Hub repositories. Compute nodes often have no internet, so the
``fetch_checkpoint`` localrule (``python -m samlora checkpoint --backbone <id>``) downloads
them on the submitting host into ``models/pretrained/hub/<owner>--<name>@<revision>/``;
training and prediction then read only that folder (``HF_HUB_OFFLINE=1`` in their jobs).

A source is a repository at a pinned revision (a commit): smp pins its encoders' itself;
a transformers source takes the backbone's ``revision``. Each file is fetched from the
Hub's ``resolve`` URL (``$HF_ENDPOINT``, default https://huggingface.co), checked against
the SHA-256 the backbone's ``sha256`` pins for it, if any, and recorded with its SHA-256
in ``manifest.json``, written last. A mismatch is an error and the file is dropped. A
fetched folder is verified against its manifest before every use as a checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from samlora.models.baselines.archs import SMP_KINDS, get_arch
from samlora.utils.io import sha256_file, write_text

log = logging.getLogger(__name__)

HUB = "hub"
MANIFEST = "manifest.json"
#: What a source needs: its config and its weights (safetensors only: no pickles).
FILES = ("config.json", "model.safetensors")
DEFAULT_ENDPOINT = "https://huggingface.co"
#: smp's own pins of its ImageNet encoders (repository, commit), as
#: ``segmentation_models_pytorch.encoders.encoders[<name>]["pretrained_settings"]`` holds
#: them (a test checks they agree); here so that the workflow need not import torch.
SMP_PINS = {
    ("resnet18", "imagenet"): ("smp-hub/resnet18.imagenet",
                               "3f2325ff978283d47aa6a1d6878ca20565622683"),
    ("resnet34", "imagenet"): ("smp-hub/resnet34.imagenet",
                               "7a57b34f723329ff020b3f8bc41771163c519d0c"),
    ("resnet50", "imagenet"): ("smp-hub/resnet50.imagenet",
                               "00cb74e366966d59cd9a35af57e618af9f88efe9"),
}


@dataclass(frozen=True)
class HubSource:
    """A Hub repository at a revision, with the SHA-256 pins known for its files."""

    repo_id: str
    revision: str
    pins: Mapping[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """The folder name under ``models/pretrained/hub/``."""
        return f"{self.repo_id.replace('/', '--')}@{self.revision}"

    def url(self, name: str) -> str:
        endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
        return f"{endpoint}/{self.repo_id}/resolve/{self.revision}/{name}"


def hub_source(backbone: Mapping, where: str = "backbone") -> HubSource | None:
    """The Hub source of a baseline backbone's ``pretrained``, or None (random weights, a
    local folder, or not a baseline)."""
    pretrained = backbone.get("pretrained")
    if backbone.get("family") != "baseline" or not pretrained or Path(pretrained).is_dir():
        return None
    arch = get_arch(str(backbone["arch"]))
    pins = dict(backbone.get("sha256") or {})
    if arch.kind in SMP_KINDS:
        encoder = arch.options["encoder_name"]
        if (encoder, pretrained) not in SMP_PINS:
            known = sorted(w for e, w in SMP_PINS if e == encoder)
            raise ValueError(f"{where}: encoder {encoder} has no pretrained weights "
                             f"{pretrained!r} samlora can fetch; known: {known}")
        repo, revision = SMP_PINS[(encoder, pretrained)]
        return HubSource(repo, revision, pins)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", str(pretrained)):
        raise ValueError(f"{where}.pretrained: {pretrained!r} is neither a folder nor a "
                         "Hugging Face repository id (owner/name)")
    revision = backbone.get("revision") or "main"
    return HubSource(str(pretrained), str(revision), pins)


def manifest_path(source: HubSource, models_dir: Path) -> Path:
    return Path(models_dir) / HUB / source.folder / MANIFEST


def _check(path: Path, name: str, expected: str | None, source: HubSource) -> str:
    from samlora.models.checkpoints import ChecksumError

    actual = sha256_file(path)
    if expected and actual != expected.lower():
        raise ChecksumError(
            f"{path}: sha256 {actual}, expected {expected.lower()} for {name} of "
            f"{source.repo_id}@{source.revision}; the file is corrupt or not this revision "
            "(delete it and fetch again)")
    return actual


def verify_fetched(source: HubSource, models_dir: Path) -> Path:
    """The fetched folder of ``source``, after checking every file against its manifest
    (and the pins). Raises FileNotFoundError naming the command when it was never fetched."""
    manifest = manifest_path(source, models_dir)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest}: the pretrained weights {source.repo_id}@{source.revision} were "
            "not fetched; run `python -m samlora checkpoint --backbone <id>` (the "
            "fetch_checkpoint rule) on a host with internet first")
    recorded = json.loads(manifest.read_text())["files"]
    for name, entry in recorded.items():
        _check(manifest.parent / name, name, source.pins.get(name) or entry["sha256"], source)
    return manifest.parent


def fetch_hub_weights(source: HubSource, models_dir: Path) -> Path:
    """Download the files of ``source`` (unless present and verified) and return the folder.

    Raises:
        ChecksumError: a file does not match its pin (it is deleted).
        DownloadError: the download failed (names the URL; a partial file is kept).
    """
    from samlora.data.http_fetch import http_download

    folder = Path(models_dir) / HUB / source.folder
    if manifest_path(source, models_dir).is_file():
        verify_fetched(source, models_dir)
        log.info("pretrained %s@%s verified in %s", source.repo_id, source.revision, folder)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in FILES:
        path, part = folder / name, folder / f"{name}.part"
        if path.is_file():
            sha = _check(path, name, source.pins.get(name), source)
        else:
            log.info("downloading %s", source.url(name))
            http_download(source.url(name), part, target=path)
            try:  # hashed once, before the rename
                sha = _check(part, name, source.pins.get(name), source)
            except RuntimeError:  # ChecksumError: a bad download must not be resumed from
                part.unlink(missing_ok=True)
                raise
            os.replace(part, path)
        if name not in source.pins:
            log.warning("%s of %s@%s has no sha256 pin in params.yaml; recorded %s in the "
                        "manifest (pin it under the backbone's sha256)", name,
                        source.repo_id, source.revision, sha)
        files[name] = {"sha256": sha, "bytes": path.stat().st_size, "url": source.url(name)}
    write_text(folder / MANIFEST, json.dumps({"repo_id": source.repo_id,
                                              "revision": source.revision,
                                              "files": files}, indent=2) + "\n")
    return folder
