"""fetch_checkpoint and load_sam_weights on checkpoints written here in the official layout."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import torch

from samlora.models.checkpoints import ChecksumError, fetch_checkpoint, load_sam_weights
from samlora.models.sam import build_sam
from samlora.models.segmenter import build_segmenter
from samlora.utils.io import sha256_file


def _official_layout(sam: torch.nn.Module, path: Path) -> dict[str, Any]:
    """Save ``sam`` as the official .pth is (a plain state_dict); return its params spec."""
    torch.save(sam.state_dict(), path)
    return {"file": path.name, "url": path.as_uri(), "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}


@pytest.fixture
def tiny_ckpt(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    torch.manual_seed(1)
    src = tmp_path / "src"
    src.mkdir()
    path = src / "sam_tiny.pth"
    return path, _official_layout(build_sam("tiny", 256), path)


def test_existing_file_is_verified(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    path, spec = tiny_ckpt
    assert fetch_checkpoint(spec, path.parent) == path


def test_size_mismatch_is_an_error(tiny_ckpt: tuple[Path, dict]) -> None:
    path, spec = tiny_ckpt
    with pytest.raises(ChecksumError, match=f"expected {spec['bytes'] + 1:,}"):
        fetch_checkpoint({**spec, "bytes": spec["bytes"] + 1}, path.parent)


def test_sha_mismatch_is_an_error(tiny_ckpt: tuple[Path, dict]) -> None:
    path, spec = tiny_ckpt
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=spec["sha256"]) as err:
        fetch_checkpoint(spec, path.parent)
    assert sha256_file(path) in str(err.value)


def test_download_verifies_then_renames(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    _, spec = tiny_ckpt
    models = tmp_path / "models"
    got = fetch_checkpoint(spec, models)
    assert got == models / spec["file"] and sha256_file(got) == spec["sha256"]
    assert not list(models.glob("*.part"))


def test_corrupt_download_is_dropped(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    _, spec = tiny_ckpt
    models = tmp_path / "models"
    with pytest.raises(ChecksumError):
        fetch_checkpoint({**spec, "sha256": "0" * 64}, models)
    assert list(models.iterdir()) == []


def test_no_network_says_where_to_put_the_file(tiny_ckpt: tuple[Path, dict], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, spec = tiny_ckpt

    def offline(*args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    spec = {**spec, "url": "https://dl.fbaipublicfiles.com/segment_anything/x.pth"}
    with pytest.raises(RuntimeError, match="put it at") as err:
        fetch_checkpoint(spec, tmp_path / "models")
    assert str(tmp_path / "models" / spec["file"]) in str(err.value)
    assert spec["url"] in str(err.value)


def test_load_round_trip_and_sha(tiny_ckpt: tuple[Path, dict]) -> None:
    path, spec = tiny_ckpt
    saved = torch.load(path, weights_only=True)
    torch.manual_seed(2)
    sam = build_sam("tiny", 256)
    load_sam_weights(sam, path, expected_sha256=spec["sha256"])
    for key, value in sam.state_dict().items():
        assert torch.equal(value, saved[key]), key
    with pytest.raises(ChecksumError):
        load_sam_weights(sam, path, expected_sha256="f" * 64)


def test_load_is_strict_and_lists_keys(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = tiny_ckpt
    sd = torch.load(path, weights_only=True)
    sd["extra.weight"] = sd.pop("mask_decoder.iou_token.weight")
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(RuntimeError, match="missing keys") as err:
        load_sam_weights(build_sam("tiny", 256), bad)
    assert "mask_decoder.iou_token.weight" in str(err.value)
    assert "extra.weight" in str(err.value)


def test_load_refuses_pickled_objects(tmp_path: Path) -> None:
    bad = tmp_path / "pickle.pth"
    torch.save({"model": Path("x")}, bad)  # an arbitrary class: weights_only must refuse it
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|not a SAM"):
        load_sam_weights(build_sam("tiny", 256), bad)


def test_load_resizes_position_embeddings(tiny_ckpt: tuple[Path, dict]) -> None:
    path, _ = tiny_ckpt
    saved = torch.load(path, weights_only=True)
    sam = build_sam("tiny", 128)  # 8×8 embedding instead of 16×16
    load_sam_weights(sam, path)
    sd = sam.state_dict()
    assert sd["image_encoder.pos_embed"].shape == (1, 8, 8, 64)
    assert sd["image_encoder.blocks.1.attn.rel_pos_h"].shape == (15, 32)
    assert torch.equal(sd["image_encoder.blocks.0.mlp.lin1.weight"],
                       saved["image_encoder.blocks.0.mlp.lin1.weight"])


def test_other_shape_mismatch_is_an_error(tiny_ckpt: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = tiny_ckpt
    sd = torch.load(path, weights_only=True)
    sd["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)
    bad = tmp_path / "bad_shape.pth"
    torch.save(sd, bad)
    with pytest.raises(RuntimeError, match="shape mismatch.*iou_token"):
        load_sam_weights(build_sam("tiny", 256), bad)


def test_vit_b_official_layout_through_build_segmenter(tmp_path: Path, vit_b_backbone: dict,
                                                       topolora_cfg: dict) -> None:
    """vit_b saved as the official file is: fetched (verified), loaded, then LoRA-wrapped."""
    torch.manual_seed(3)
    spec = _official_layout(build_sam("vit_b", 1024), tmp_path / "sam_vit_b_01ec64.pth")
    saved = torch.load(tmp_path / spec["file"], weights_only=True)
    model = build_segmenter(topolora_cfg, {**vit_b_backbone, "checkpoint": spec},
                            models_dir=tmp_path)
    sd = model.state_dict()
    for key in ("image_encoder.blocks.5.mlp.lin1.weight", "mask_decoder.iou_token.weight",
                "image_encoder.pos_embed"):
        wrapped = key.replace("lin1.weight", "lin1.base_layer.weight")
        assert torch.equal(sd[f"sam.{wrapped}"], saved[key]), key
    assert "sam.image_encoder.blocks.5.mlp.lin1.lora_A.default.weight" in sd
