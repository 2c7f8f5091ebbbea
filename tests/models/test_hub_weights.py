"""Baseline weights from the Hub: fetched once over HTTP (a local server on 127.0.0.1
standing in for huggingface.co, serving files written in the libraries' own formats),
checked against their pins, and the only thing training reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from samlora.models.baselines.segmenter import build_baseline
from samlora.models.checkpoints import ChecksumError
from samlora.models.hub_weights import (
    MANIFEST,
    SMP_PINS,
    fetch_hub_weights,
    hub_source,
    verify_fetched,
)
from tests.data.download_helpers import serving, sha

METHOD = {"lora": None, "adapter": None, "encoder": "train", "decoder": "train"}


def _segformer_files(tmp_path: Path) -> dict[str, bytes]:
    """config.json + model.safetensors of a tiny SegFormer, as save_pretrained writes them
    (its state dict is saved beside them, to compare with)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from samlora.models.baselines.nets import get_arch

    torch.manual_seed(0)
    net = SegformerForSemanticSegmentation(
        SegformerConfig(num_labels=1, **get_arch("segformer_tiny").options))
    out = tmp_path / "saved"
    net.save_pretrained(out, safe_serialization=True)
    torch.save(net.state_dict(), tmp_path / "original.pt")
    return {name: (out / name).read_bytes() for name in ("config.json", "model.safetensors")}


def _backbone(files: dict[str, bytes], **extra) -> dict:
    return {"family": "baseline", "arch": "segformer_tiny", "img_size": 128,
            "checkpoint": None, "pretrained": "lab/segformer-tiny", "revision": "c0ffee",
            "sha256": {n: sha(b) for n, b in files.items()}} | extra


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    files = _segformer_files(tmp_path)
    with serving() as srv:
        for name, data in files.items():
            srv.files[f"/lab/segformer-tiny/resolve/c0ffee/{name}"] = data
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{srv.server_port}")
        yield srv, files


def test_fetched_weights_are_the_ones_training_builds_from(hub, tmp_path: Path) -> None:
    srv, files = hub
    backbone = _backbone(files)
    models = tmp_path / "models"
    folder = fetch_hub_weights(hub_source(backbone), models)
    assert folder == models / "hub" / "lab--segformer-tiny@c0ffee"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["files"]["model.safetensors"]["sha256"] == sha(files["model.safetensors"])
    model = build_baseline(METHOD, backbone, models_dir=models)
    original = torch.load(tmp_path / "original.pt", weights_only=True)
    ours = model.net.state_dict()
    assert set(ours) == set(original)
    assert all(torch.equal(ours[k], original[k]) for k in original)
    # a second fetch verifies and downloads nothing
    count = len(srv.requests)
    fetch_hub_weights(hub_source(backbone), models)
    assert len(srv.requests) == count


def test_a_download_that_does_not_match_its_pin_is_dropped(hub, tmp_path: Path) -> None:
    _, files = hub
    backbone = _backbone(files, sha256={"model.safetensors": "0" * 64})
    models = tmp_path / "models"
    with pytest.raises(ChecksumError, match="model.safetensors of lab/segformer-tiny@c0ffee"):
        fetch_hub_weights(hub_source(backbone), models)
    folder = models / "hub" / "lab--segformer-tiny@c0ffee"
    assert not (folder / MANIFEST).exists()
    assert not (folder / "model.safetensors").exists()
    assert not (folder / "model.safetensors.part").exists()


def test_a_changed_file_after_the_fetch_is_an_error(hub, tmp_path: Path) -> None:
    _, files = hub
    backbone = _backbone(files, sha256=None)  # unpinned: the manifest's record checks it
    models = tmp_path / "models"
    folder = fetch_hub_weights(hub_source(backbone), models)
    (folder / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ChecksumError, match="sha256"):
        verify_fetched(hub_source(backbone), models)


def test_training_never_downloads_what_was_not_fetched(hub, tmp_path: Path) -> None:
    srv, files = hub
    with pytest.raises(FileNotFoundError, match="python -m samlora checkpoint --backbone"):
        build_baseline(METHOD, _backbone(files), models_dir=tmp_path / "empty")
    assert srv.requests == []


def test_smp_encoder_weights_come_from_the_fetched_folder(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    """U-Net ResNet-34 (real size, random weights): smp's Hub layout, its pinned commit."""
    import segmentation_models_pytorch as smp
    from safetensors.torch import save_file

    torch.manual_seed(1)
    encoder = smp.Unet(encoder_name="resnet34", encoder_weights=None, classes=1).encoder
    source = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(source))
    repo, revision = SMP_PINS[("resnet34", "imagenet")]
    backbone = {"family": "baseline", "arch": "unet_resnet34", "img_size": 128,
                "checkpoint": None, "pretrained": "imagenet"}
    with serving() as srv:
        srv.files[f"/{repo}/resolve/{revision}/model.safetensors"] = source.read_bytes()
        srv.files[f"/{repo}/resolve/{revision}/config.json"] = b"{}"
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{srv.server_port}")
        fetch_hub_weights(hub_source(backbone), tmp_path / "models")
    model = build_baseline(METHOD, backbone, models_dir=tmp_path / "models")
    got = model.net.encoder.state_dict()
    assert all(torch.equal(got[k], v) for k, v in encoder.state_dict().items())


def test_smp_pins_agree_with_smp() -> None:
    import segmentation_models_pytorch as smp

    for (encoder, weights), (repo, revision) in SMP_PINS.items():
        settings = smp.encoders.encoders[encoder]["pretrained_settings"][weights]
        assert (settings["repo_id"], settings["revision"]) == (repo, revision)


def test_params_yaml_names_a_hub_source_for_every_pretrained_baseline(repo_root: Path) -> None:
    from samlora.config import load_config

    cfg = load_config([repo_root / "params.yaml"])
    sources = {name: hub_source(dict(b)) for name, b in cfg.backbones.items()
               if b.family == "baseline" and b.get("pretrained")}
    assert sources and all(s is not None and s.revision for s in sources.values())
    assert sources["segformer_b0"].revision == "25ce79d97e6d9d509ed12e17cb2eb89b0a83a2dc"
    assert set(sources["segformer_b0"].pins) == {"config.json", "model.safetensors"}
