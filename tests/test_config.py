"""Config composition: params.yaml + presets + Hydra overrides, schema validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samlora.config import ConfigError, load_config, save_config, select


def test_params_yaml_validates(repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    assert cfg.studies.topolora_benchmark.seeds == [0, 1, 2]
    assert cfg.methods.topolora_sam.lora.r == 8


def test_preset_overrides_and_hydra_overrides_apply_in_order(repo_root: Path) -> None:
    cfg = load_config([repo_root / "params.yaml", repo_root / "presets/demo.yaml"],
                      ["train.lr=0.25", "studies.demo_benchmark.seeds=[4,5]"])
    assert cfg.methods.topolora_sam.backbone == "litemedsam"  # from the preset
    assert cfg.methods.topolora_sam.lora.r == 8              # untouched by the preset
    assert cfg.train.lr == 0.25 and list(cfg.studies.demo_benchmark.seeds) == [4, 5]
    assert list(cfg.studies.enabled)[0] == "demo_benchmark"  # the preset's own studies


def test_demo_preset_is_an_override_not_a_copy(repo_root: Path) -> None:
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    preset = yaml.safe_load((repo_root / "presets/demo.yaml").read_text())
    assert set(preset) < set(params)

    def leaves(node: object, prefix: str = "") -> dict[str, object]:
        if not isinstance(node, dict):
            return {prefix: node}
        out: dict[str, object] = {}
        for key, value in node.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
        return out

    base, over = leaves(params), leaves(preset)
    repeated = [k for k, v in over.items() if k in base and base[k] == v]
    assert not repeated, f"preset repeats params.yaml values: {repeated}"
    assert len(over) < len(base) / 3  # a handful of overrides, not a copy


def test_unknown_override_key_names_the_key(repo_root: Path) -> None:
    with pytest.raises(ConfigError, match="train.lrr"):
        load_config([repo_root / "params.yaml"], ["train.lrr=1"])


def test_unknown_key_in_params_file_names_the_key(repo_root: Path, tmp_path: Path) -> None:
    data = yaml.safe_load((repo_root / "params.yaml").read_text())
    data["train"]["epochz"] = 3
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="epochz"):
        load_config([bad])


def test_unknown_key_in_preset_names_file_and_key(repo_root: Path, tmp_path: Path) -> None:
    preset = tmp_path / "typo.yaml"
    preset.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"typo.yaml.*train.learning_rate"):
        load_config([repo_root / "params.yaml", preset])


def test_bad_value_and_dangling_reference(repo_root: Path) -> None:
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config([repo_root / "params.yaml"], ["train.epochs=0"])
    with pytest.raises(ConfigError, match="unknown backbone 'sam_vit_z'"):
        load_config([repo_root / "params.yaml"], ["methods.decoder_only.backbone=sam_vit_z"])
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        load_config([repo_root / "params.yaml"], ["studies.head_to_head.methods=[nope]"])
    with pytest.raises(ConfigError, match="unknown study 'nope'"):
        load_config([repo_root / "params.yaml"], ["studies.enabled=[nope]"])
    with pytest.raises(ConfigError, match="has no key 'lora.rr'"):
        load_config([repo_root / "params.yaml"],
                    ["studies.topolora_rank.methods=[{base: topolora_sam, sweep: {lora.rr: [4]}}]"])


def test_missing_params_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "absent.yaml"])


def test_select_and_save_config_round_trip(repo_root: Path, tmp_path: Path) -> None:
    cfg = load_config([repo_root / "params.yaml"])
    part = select(cfg, ["train.lr", "data.fov"])
    assert part == {"train": {"lr": 1e-4}, "data": {"fov": dict(cfg.data.fov)}}
    out = tmp_path / "config.yaml"
    save_config(part, out)
    mtime = out.stat().st_mtime_ns
    save_config(part, out)  # unchanged content keeps the file as it is
    assert out.stat().st_mtime_ns == mtime
    assert yaml.safe_load(out.read_text()) == part


def test_global_hydra_of_another_library_survives(repo_root: Path) -> None:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(repo_root / "workflow/schemas"), version_base="1.3"):
        outer = GlobalHydra.instance().hydra
        load_config([repo_root / "params.yaml"], ["train.lr=0.5"])
        assert GlobalHydra.instance().hydra is outer


def test_a_preset_may_add_methods_and_their_optional_blocks_but_not_typos(
        repo_root: Path, tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text("methods:\n  decoder_only:\n    train: {epochs: 3}\n"
                  "  mine:\n    backbone: sam_tiny\n    lora: null\n    adapter: null\n"
                  "    decoder: train\n    loss: {bce: 1.0, dice: 1.0, cldice: 0.0,"
                  " cldice_iters: 10}\n")
    cfg = load_config([repo_root / "params.yaml", ok])
    assert cfg.methods.decoder_only.train.epochs == 3 and cfg.methods.mine.backbone == "sam_tiny"
    typo = tmp_path / "typo.yaml"
    typo.write_text("methods:\n  decoder_only:\n    decodr: train\n")
    with pytest.raises(ConfigError, match=r"unknown params key 'methods\.decoder_only\.decodr'"):
        load_config([repo_root / "params.yaml", typo])


def test_numbers_as_dvc_writes_them_load_as_numbers(repo_root: Path, tmp_path: Path) -> None:
    """`dvc exp run -S train.lr=1e-5` writes ``lr: 1e-05`` (ruamel.yaml, YAML 1.2), which
    PyYAML's YAML 1.1 reads as a string; params are read as YAML 1.2, so it is a float, and
    ``off`` stays the string the schema names (YAML 1.1 would read False)."""
    text = (repo_root / "params.yaml").read_text()
    assert yaml.safe_load("lr: 1e-05")["lr"] == "1e-05"  # the trap
    text = text.replace("  lr: ", "  lr: 1e-05  # was ", 1)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    cfg = load_config([path])
    assert cfg.train.lr == 1e-05 and isinstance(cfg.train.lr, float)
    preset = tmp_path / "cache_off.yaml"
    preset.write_text("train:\n  embedding_cache: off\n")
    assert load_config([path, preset]).train.embedding_cache == "off"
