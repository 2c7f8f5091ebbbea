"""The frozen-encoder embedding cache: exact, shared, and off where it cannot be exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from samlora.config import load_config
from samlora.study.studies import single_run
from samlora.training.embed_cache import EmbeddingCache, cache_reason
from samlora.training.loop import train_spec

TRAIN_CASES = ("21", "22", "23", "24", "25")


@pytest.fixture(scope="module")
def processed(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.evaluation.conftest import build_drive_processed

    out = tmp_path_factory.mktemp("processed") / "drive"
    return build_drive_processed(mirror, out, TRAIN_CASES)


def _cfg(repo_root: Path, processed: Path, **train):
    cfg = load_config([repo_root / "params.yaml"])
    return OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(processed.parent)},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "methods": {m: {"backbone": "sam_tiny"} for m in ("decoder_only", "adapter_only",
                                                         "topolora_sam")},
        "train": {"epochs": 3, "num_workers": 0, "device": "cpu", "val_fraction": 0.2,
                  **train}})


def _train(cfg, method: str, out: Path, models: Path, seed: int = 0) -> dict:
    train_spec(single_run(cfg, method, "drive", seed), out, models)
    return load_file(out / "adapter.safetensors")


@pytest.mark.parametrize("method", ["decoder_only", "adapter_only"])
def test_cached_training_gives_the_weights_of_uncached_training(
        repo_root: Path, processed: Path, tmp_path: Path, method: str) -> None:
    """params.yaml's settings (batch 1 × 4 accumulation, flips + rot90 on): bit for bit."""
    on, off = _cfg(repo_root, processed), _cfg(repo_root, processed, embedding_cache="off")
    cached = _train(on, method, tmp_path / "cached", tmp_path / "m" / "pretrained")
    plain = _train(off, method, tmp_path / "plain", tmp_path / "n" / "pretrained")
    assert cached.keys() == plain.keys()
    differ = [k for k in cached if not torch.equal(cached[k], plain[k])]
    assert not differ, differ[:3]
    stored = list((tmp_path / "m" / "embeddings").glob("*/*.safetensors"))
    assert stored and not (tmp_path / "n" / "embeddings").exists()
    # 4 train cases × at most 8 dihedral views, plus the 1 validation case unaugmented
    assert len(stored) <= 4 * 8 + 1
    assert {p.stem.split("-", 1)[1].split("-")[0] for p in stored} == {"lb64"}


def test_runs_and_seeds_share_the_cache_and_predict_reads_it(
        repo_root: Path, processed: Path, tmp_path: Path, caplog) -> None:
    cfg = _cfg(repo_root, processed, augment=None)
    models = tmp_path / "models" / "pretrained"
    _train(cfg, "decoder_only", tmp_path / "a", models, seed=0)
    folders = list((tmp_path / "models" / "embeddings").iterdir())
    assert len(folders) == 1
    first = sorted(p.name for p in folders[0].glob("*.safetensors"))
    caplog.set_level("INFO", logger="samlora.training.loop")
    _train(cfg, "adapter_only", tmp_path / "b", models, seed=0)  # same encoder, same views
    assert sorted(p.name for p in folders[0].glob("*.safetensors")) == first
    assert "0 encoded (hit rate 100 %)" in caplog.text
    from samlora.evaluation.predict import predict_dataset

    from tests.evaluation.conftest import TEST_CASES

    predict_dataset(tmp_path / "a", processed, tmp_path / "pred", models)
    after = sorted(p.name for p in folders[0].glob("*.safetensors"))
    assert len(after) - len(first) == len(TEST_CASES)  # each test image encoded once
    predict_dataset(tmp_path / "b", processed, tmp_path / "pred_b", models)
    assert sorted(p.name for p in folders[0].glob("*.safetensors")) == after  # all read


def test_the_cache_is_off_where_it_cannot_be_exact(repo_root: Path, processed: Path) -> None:
    from samlora.models.registry import build_model

    cfg = _cfg(repo_root, processed)
    b = OmegaConf.to_container(cfg.backbones.sam_tiny)
    frozen = build_model(OmegaConf.to_container(cfg.methods.decoder_only), b, pretrained=False)
    lora = build_model(OmegaConf.to_container(cfg.methods.topolora_sam), b, pretrained=False)
    assert cache_reason(frozen, {"hflip": 0.5, "vflip": 0.5, "rot90": True}) is None
    assert cache_reason(frozen, None) is None
    assert "encoder trains" in cache_reason(lora, None)
    assert "draws new inputs" in cache_reason(frozen, {"pipeline": "topolora_ref"})
    assert cache_reason(frozen, None, "off") == "train.embedding_cache is off"
    with pytest.raises(ValueError, match=r"train\.embedding_cache: 'on' is not one of"):
        cache_reason(frozen, None, "on")


def test_the_key_follows_the_encoder_weights(repo_root: Path, processed: Path,
                                             tmp_path: Path) -> None:
    from samlora.models.registry import build_model

    cfg = _cfg(repo_root, processed)
    b = OmegaConf.to_container(cfg.backbones.sam_tiny)
    m = OmegaConf.to_container(cfg.methods.decoder_only)
    torch.manual_seed(0)
    a = build_model(m, b, pretrained=False)
    torch.manual_seed(1)
    other = build_model(m, b, pretrained=False)
    torch.manual_seed(0)
    again = build_model(m, b, pretrained=False)
    ident = {"img_size": 64}
    fa, fo, fg = (EmbeddingCache.for_model(x, ident, tmp_path).folder for x in (a, other, again))
    assert fa == fg and fa != fo
    assert EmbeddingCache.for_model(a, {"img_size": 64, "precision": "bf16"}, tmp_path).folder != fa
