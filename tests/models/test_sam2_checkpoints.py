"""SAM 2 checkpoints written here in the official layout: strict load, 2.0 vs 2.1, Hydra state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import initialize_config_dir, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from samlora.config import load_config
from samlora.models.checkpoints import ChecksumError
from samlora.models.sam2_build import (
    SAM21_ONLY_KEYS,
    build_sam2_base,
    get_arch,
    load_sam2_weights,
)
from samlora.models.sam2_segmenter import build_sam2_segmenter
from samlora.utils.io import sha256_file

DECODER_ONLY = {"backbone": "x", "lora": None, "adapter": None, "decoder": "train",
                "loss": {"bce": 1.0, "dice": 1.0, "cldice": 0.0, "cldice_iters": 10}}


def _save_official(model: torch.nn.Module, path: Path) -> dict[str, Any]:
    """Save as Meta's sam2 .pt files are (``{"model": state_dict}``); return the params spec."""
    torch.save({"model": model.state_dict()}, path)
    return {"file": path.name, "url": path.as_uri(), "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}


@pytest.fixture(scope="module")
def hiera_t_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random hiera_t checkpoints of both releases, in the official layout."""
    folder = tmp_path_factory.mktemp("sam2_ckpts")
    out = {}
    for arch in ("sam2.1_hiera_t", "sam2_hiera_t"):
        torch.manual_seed(7)
        out[arch] = folder / f"{arch}.pt"
        _save_official(build_sam2_base(arch, 1024), out[arch])
    return out


def test_releases_differ_by_the_21_only_keys(hiera_t_files: dict[str, Path]) -> None:
    v21 = torch.load(hiera_t_files["sam2.1_hiera_t"], weights_only=True)["model"]
    v20 = torch.load(hiera_t_files["sam2_hiera_t"], weights_only=True)["model"]
    assert set(v21) - set(v20) == SAM21_ONLY_KEYS and not set(v20) - set(v21)


def test_official_file_through_the_builder(hiera_t_files: dict[str, Path], tmp_path: Path
                                          ) -> None:
    """Fetched (size + SHA-256 verified), loaded strictly, kept parts carry the weights."""
    src = hiera_t_files["sam2.1_hiera_t"]
    spec = {"file": src.name, "url": src.as_uri(), "bytes": src.stat().st_size,
            "sha256": sha256_file(src)}
    backbone = {"family": "sam2", "arch": "sam2.1_hiera_t", "img_size": 512, "checkpoint": spec}
    model = build_sam2_segmenter(DECODER_ONLY, backbone, models_dir=tmp_path)
    saved = torch.load(src, weights_only=True)["model"]
    sd = model.state_dict()
    assert set(sd) < set(saved)  # a subset of the official keys, same names
    for key in sd:
        assert torch.equal(sd[key], saved[key]), key
    assert (tmp_path / src.name).is_file()
    with pytest.raises(ChecksumError, match="sha256"):
        bad = dict(spec, sha256="0" * 64, file="other.pt")
        build_sam2_segmenter(DECODER_ONLY, {**backbone, "checkpoint": bad},
                             models_dir=tmp_path / "fresh")


def test_20_checkpoint_into_21_config_says_so(hiera_t_files: dict[str, Path]) -> None:
    with pytest.raises(RuntimeError, match=r"SAM 2 \(2\.0\) checkpoint but the backbone is a "
                                           r"SAM 2\.1") as err:
        load_sam2_weights(build_sam2_base("sam2.1_hiera_t", 1024),
                          hiera_t_files["sam2_hiera_t"], "sam2.1_hiera_t")
    assert "no_obj_embed_spatial" in str(err.value)


def test_21_checkpoint_into_20_config_says_so(hiera_t_files: dict[str, Path]) -> None:
    with pytest.raises(RuntimeError, match=r"SAM 2\.1 checkpoint but the backbone is a "
                                           r"SAM 2 \(2\.0\)") as err:
        load_sam2_weights(build_sam2_base("sam2_hiera_t", 1024),
                          hiera_t_files["sam2.1_hiera_t"], "sam2_hiera_t")
    assert "obj_ptr_tpos_proj.weight" in str(err.value)


def test_other_key_and_shape_mismatches(tmp_path: Path) -> None:
    torch.manual_seed(0)
    sd = build_sam2_base("tiny", 256).state_dict()
    renamed = dict(sd)
    renamed["extra.weight"] = renamed.pop("sam_mask_decoder.iou_token.weight")
    torch.save({"model": renamed}, tmp_path / "keys.pt")
    with pytest.raises(RuntimeError, match="missing keys") as err:
        load_sam2_weights(build_sam2_base("tiny", 256), tmp_path / "keys.pt", "tiny")
    assert "extra.weight" in str(err.value) and "SAM 2.1 checkpoint" not in str(err.value)
    reshaped = dict(sd, no_mem_embed=torch.zeros(1, 1, 7))
    torch.save({"model": reshaped}, tmp_path / "shape.pt")
    with pytest.raises(RuntimeError, match="shape mismatch.*no_mem_embed"):
        load_sam2_weights(build_sam2_base("tiny", 256), tmp_path / "shape.pt", "tiny")


def test_plain_state_dict_and_pickles_are_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = build_sam2_base("tiny", 256)
    torch.save(base.state_dict(), tmp_path / "plain.pt")  # SAM v1 layout, no "model" entry
    with pytest.raises(RuntimeError, match="not a SAM 2 checkpoint"):
        load_sam2_weights(base, tmp_path / "plain.pt", "tiny")
    torch.save({"model": Path("x")}, tmp_path / "pickle.pt")  # weights_only must refuse it
    with pytest.raises(RuntimeError, match="pickle of arbitrary Python objects") as err:
        load_sam2_weights(base, tmp_path / "pickle.pt", "tiny")
    assert "weights_only=False" not in str(err.value)


def test_input_size_rules() -> None:
    assert get_arch("sam2.1_hiera_b+").release == "sam2.1"
    with pytest.raises(ValueError, match="multiple of 32"):
        build_sam2_base("tiny", 240)
    with pytest.raises(ValueError, match="unknown SAM 2 architecture"):
        build_sam2_base("hiera_huge", 1024)
    assert build_sam2_base("tiny", 384).sam_prompt_encoder.image_embedding_size == (24, 24)


def test_building_sam2_leaves_global_hydra_alone(repo_root: Path) -> None:
    """No global instance before: building SAM 2 leaves none (sam2's import side effect is
    undone), so samlora's own compose and any later ``hydra.initialize`` still work."""
    script = ("import sys; from hydra.core.global_hydra import GlobalHydra as G; "
              "from samlora.models.sam2_build import build_sam2_base, import_sam2; "
              "assert 'sam2' not in sys.modules; build_sam2_base('tiny', 64); "
              "import_sam2('sam2.build_sam'); "
              "print('sam2' in sys.modules, G.instance().is_initialized())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.split() == ["True", "False"]  # sam2 imported, its global undone
    with initialize_config_dir(config_dir=str(repo_root / "workflow/schemas"),
                               version_base="1.3"):
        cfg = load_config([repo_root / "params.yaml"], overrides=["train.lr=0.5"])
    assert cfg.train.lr == 0.5 and cfg.backbones.sam2_hiera_t.arch == "sam2.1_hiera_t"


def test_sam2s_own_global_hydra_survives(repo_root: Path) -> None:
    """With the global instance sam2 sets up on import, building and composing keep it."""
    with initialize_config_module("sam2", version_base="1.2"):  # what `import sam2` does
        outer = GlobalHydra.instance().hydra
        build_sam2_base("tiny", 256)
        cfg = load_config([repo_root / "params.yaml"], overrides=["train.epochs=3"])
        assert GlobalHydra.instance().hydra is outer
    assert cfg.train.epochs == 3
