"""Predicting a folder of unlabelled images: the same maps as the labelled test set, masks
inside the computed (or given) FOV, and unreadable files listed while the rest is written."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from samlora.cli import build_parser, main
from samlora.config import load_config
from samlora.data.fov import compute_fov
from samlora.data.io import read_image
from samlora.evaluation.predict import predict_dataset
from samlora.evaluation.predict_images import ImagesFailedError, image_stem, predict_images
from samlora.training.loop import train_run
from samlora.utils.io import read_prob_png

REPO = Path(__file__).resolve().parents[2]
NUMS = ("01", "02", "03")  # the DRIVE test cases of the drive_processed fixture


def _cfg(processed: Path) -> object:
    cfg = load_config([REPO / "params.yaml"])
    return OmegaConf.merge(cfg, {
        "data": {"processed_dir": str(processed.parent)},
        "backbones": {"sam_tiny": {"img_size": 64}},
        "methods": {"topolora_sam": {"backbone": "sam_tiny", "adapter": {"hidden": 8}}},
        "train": {"epochs": 1, "batch_size": 1, "grad_accum": 1, "num_workers": 0,
                  "device": "cpu"},
    })


@pytest.fixture(scope="module")
def trained(drive_processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run") / "tiny"
    train_run(_cfg(drive_processed), "topolora_sam", "drive", 0, run, models_dir=run)
    return run


@pytest.fixture(scope="module")
def labelled(trained: Path, drive_processed: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """predict_dataset's outputs for the run on the labelled test set."""
    out = tmp_path_factory.mktemp("labelled")
    predict_dataset(trained, drive_processed, out, trained, device="cpu")
    return out


def _images(mirror: Path, folder: Path) -> Path:
    """The original DRIVE test TIFs, copied as files and named as the prepared cases."""
    folder.mkdir(parents=True)
    for num in NUMS:
        shutil.copyfile(mirror / "DRIVE" / "test" / "images" / f"{num}_test.tif",
                        folder / f"drive_{num}.tif")
    return folder


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_image_stems_strip_known_suffixes_only() -> None:
    assert image_stem(Path("a.b.TIF")) == "a.b"
    assert image_stem(Path("x.tif.gz")) == "x" and image_stem(Path("v.nii.gz")) == "v"
    assert image_stem(Path("notes.txt")) is None and image_stem(Path(".png")) is None


def test_the_tif_decodes_to_the_prepared_png_pixels(mirror: Path,
                                                   drive_processed: Path) -> None:
    for num in NUMS:
        tif = read_image(mirror / "DRIVE" / "test" / "images" / f"{num}_test.tif")
        png = read_image(drive_processed / "images" / f"drive_{num}.png")
        assert tif.dtype == png.dtype == np.uint8 and np.array_equal(tif, png)


def test_unlabelled_images_give_the_test_set_maps_bit_for_bit(
        trained: Path, labelled: Path, drive_processed: Path, mirror: Path,
        tmp_path: Path) -> None:
    cfg = _cfg(drive_processed)
    images = _images(mirror, tmp_path / "images")
    out = tmp_path / "out"
    threshold = float(cfg.evaluate.threshold)
    record = predict_images(trained, images, out, trained, cfg.data.fov, threshold,
                            device="cpu")
    cases = [f"drive_{n}" for n in NUMS]
    assert record["cases"] == cases and record["failures"] == []
    saved = json.loads((out / "predictions.json").read_text())
    assert saved["run"] == str(trained) and saved["method"] == "topolora_sam"
    assert saved["prompt_modes"] == ["none"] and saved["fov"] == "computed"
    for case in cases:
        ours, theirs = _png(out / "probs" / f"{case}.png"), _png(labelled / "probs" / f"{case}.png")
        assert ours.dtype == theirs.dtype == np.uint16 and np.array_equal(ours, theirs)
        image = read_image(images / f"{case}.tif")
        fov = compute_fov(image, float(cfg.data.fov.red_threshold), int(cfg.data.fov.radius))
        assert np.array_equal(_png(out / "fov" / f"{case}.png"), fov.astype(np.uint8) * 255)
        expected = (read_prob_png(out / "probs" / f"{case}.png") >= threshold) & fov
        mask = _png(out / "masks" / f"{case}.png")
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask, expected.astype(np.uint8) * 255)
        official = _png(drive_processed / "fov" / f"{case}.png") > 0
        assert (fov & official).sum() / (fov | official).sum() > 0.9  # loosely the official
    assert not list(out.glob(".images-*"))


def test_an_unreadable_file_is_listed_and_the_rest_written(
        trained: Path, labelled: Path, mirror: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    images = _images(mirror, tmp_path / "images")
    (images / "broken.png").write_bytes(b"not a png at all")
    (images / "notes.txt").write_text("not an image: skipped")
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        code = main(["predict", "--params", str(REPO / "params.yaml"), "--run", str(trained),
                     "--images", str(images), "--out", str(out), "--models-dir", str(trained),
                     "train.device=cpu"])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(images / "broken.png") in m and "\n" not in m for m in errors)
    assert any("1 of 4 image files could not be read" in m for m in errors)
    saved = json.loads((out / "predictions.json").read_text())
    assert saved["cases"] == [f"drive_{n}" for n in NUMS]
    assert [f["file"] for f in saved["failures"]] == ["broken.png"]
    for n in NUMS:
        assert np.array_equal(_png(out / "probs" / f"drive_{n}.png"),
                              _png(labelled / "probs" / f"drive_{n}.png"))
        assert (out / "masks" / f"drive_{n}.png").is_file()
    assert not (out / "probs" / "broken.png").exists()
    assert (out / "predict_config.yaml").is_file() and not list(out.glob(".images-*"))


def test_given_fov_masks_bound_the_masks(trained: Path, drive_processed: Path, mirror: Path,
                                         tmp_path: Path) -> None:
    cfg = _cfg(drive_processed)
    images = _images(mirror, tmp_path / "images")
    fovs = tmp_path / "fovs"
    fovs.mkdir()
    for num in NUMS[:2]:  # the third image has none: it fails, the others are written
        shutil.copyfile(mirror / "DRIVE" / "test" / "mask" / f"{num}_test_mask.gif",
                        fovs / f"drive_{num}.gif")
    out = tmp_path / "out"
    with pytest.raises(ImagesFailedError, match="1 of 3 image files") as info:
        predict_images(trained, images, out, trained, cfg.data.fov, 0.5, fov_dir=fovs,
                       device="cpu")
    assert info.value.record["failures"][0]["file"] == "drive_03.tif"
    assert "no FOV mask drive_03.*" in info.value.record["failures"][0]["error"]
    for num in NUMS[:2]:
        official = _png(drive_processed / "fov" / f"drive_{num}.png") > 0
        assert np.array_equal(_png(out / "fov" / f"drive_{num}.png") > 0, official)
        expected = (read_prob_png(out / "probs" / f"drive_{num}.png") >= 0.5) & official
        assert np.array_equal(_png(out / "masks" / f"drive_{num}.png") > 0, expected)


def test_a_failed_step_keeps_the_previous_outputs(trained: Path, drive_processed: Path,
                                                  mirror: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from samlora.evaluation import predict_images as mod

    cfg = _cfg(drive_processed)
    images = _images(mirror, tmp_path / "images")
    out = tmp_path / "out"
    predict_images(trained, images, out, trained, cfg.data.fov, 0.5, device="cpu")
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real, calls = mod.write_prob_png, []

    def full_disk(path: Path, prob: np.ndarray) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        real(path, prob)

    monkeypatch.setattr(mod, "write_prob_png", full_disk)
    with pytest.raises(OSError, match="No space"):
        predict_images(trained, images, out, trained, cfg.data.fov, 0.3, device="cpu")
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_test_set_and_images_are_mutually_exclusive_and_one_is_required(
        capsys: pytest.CaptureFixture) -> None:
    parser = build_parser()
    for extra in (["--test-set", "drive", "--images", "x"], []):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["predict", "--run", "r", "--out", "o", *extra])
        assert info.value.code == 2
    assert "--images" in capsys.readouterr().err
    args = parser.parse_args(["predict", "--run", "r", "--out", "o", "--images", "x"])
    assert args.images == Path("x") and args.test_set is None and args.fov is None


def test_every_lossless_format_gives_the_same_map(trained: Path, drive_processed: Path,
                                                  mirror: Path, tmp_path: Path) -> None:
    import gzip

    cfg = _cfg(drive_processed)
    images = tmp_path / "images"
    images.mkdir()
    tif = mirror / "DRIVE" / "test" / "images" / "01_test.tif"
    shutil.copyfile(tif, images / "a.tif")
    with Image.open(tif) as im:
        rgb = im.convert("RGB")
    for fmt, name in (("PNG", "b.png"), ("PPM", "c.ppm"), ("BMP", "d.BMP")):
        rgb.save(images / name, format=fmt)
    (images / "e.png.gz").write_bytes(gzip.compress((images / "b.png").read_bytes()))
    out = tmp_path / "out"
    record = predict_images(trained, images, out, trained, cfg.data.fov, 0.5, device="cpu")
    assert record["cases"] == ["a", "b", "c", "d", "e"] and record["files"]["d"] == "d.BMP"
    first = _png(out / "probs" / "a.png")
    for stem in "bcde":
        assert np.array_equal(_png(out / "probs" / f"{stem}.png"), first)
        assert np.array_equal(_png(out / "masks" / f"{stem}.png"), _png(out / "masks" / "a.png"))


def test_two_files_of_one_stem_are_refused_before_the_model_loads(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("x.png", "x.tif"):
        Image.new("RGB", (8, 8)).save(images / name)
    with pytest.raises(ValueError, match="x.png and x.tif share the name 'x'"):
        predict_images(tmp_path / "no-run", images, tmp_path / "out", tmp_path, {}, 0.5)
    assert not (tmp_path / "out").exists()
