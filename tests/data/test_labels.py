"""Label readers: soft maps, the one-map disc/cup convention, polygons, contours, .mat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from samlora.data.errors import LabelFormatError, SizeMismatchError
from samlora.data.labels import (
    AnyChannel,
    ContourText,
    LabelmePolygons,
    LabelOptions,
    MatMap,
    OneMap,
    SoftMap,
    decode_label,
)

MAJORITY, UNION = LabelOptions("majority"), LabelOptions("union")


def _png(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path)
    return path


def test_soft_map_majority_and_union(tmp_path: Path) -> None:
    levels = np.array([[0, 64, 128], [191, 255, 0]], dtype=np.uint8)
    path = _png(tmp_path / "od.png", levels)
    np.testing.assert_array_equal(SoftMap()(path, (2, 3), MAJORITY),
                                  [[False, False, True], [True, True, False]])
    np.testing.assert_array_equal(SoftMap()(path, (2, 3), UNION),
                                  [[False, True, True], [True, True, False]])


def test_unknown_soft_map_rule() -> None:
    with pytest.raises(ValueError, match="data.soft_maps"):
        LabelOptions("mean")


def test_one_map_disc_includes_cup(tmp_path: Path) -> None:
    path = _png(tmp_path / "g0001.bmp", np.array([[0, 128, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(OneMap("disc")(path, (1, 3), MAJORITY), [[True, True, False]])
    np.testing.assert_array_equal(OneMap("cup")(path, (1, 3), MAJORITY), [[True, False, False]])
    with pytest.raises(ValueError, match="disc' or 'cup"):
        OneMap("rim")


def test_colour_label_map_refused(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    path = _png(tmp_path / "map.png", rgb)
    with pytest.raises(LabelFormatError, match="map.png"):
        OneMap("disc")(path, (2, 2), MAJORITY)
    # the same file read as a one-channel drawing: red counts as foreground
    np.testing.assert_array_equal(AnyChannel()(path, (2, 2), MAJORITY),
                                  [[True, False], [False, False]])


def _labelme(path: Path, shapes: list[dict], hw: tuple[int, int] = (20, 30)) -> Path:
    path.write_text(json.dumps({"shapes": shapes, "imageHeight": hw[0], "imageWidth": hw[1]}))
    return path


def test_labelme_polygons_by_label(tmp_path: Path) -> None:
    path = _labelme(tmp_path / "image_1.json", [
        {"label": "Disc", "points": [[2, 2], [11, 2], [11, 11], [2, 11]], "shape_type": "polygon"},
        {"label": "cup", "points": [[5, 5], [8, 5], [8, 8], [5, 8]], "shape_type": "polygon"},
    ])
    disc = LabelmePolygons(("disc",))(path, (20, 30), MAJORITY)
    cup = LabelmePolygons(("cup",))(path, (20, 30), MAJORITY)
    assert disc.sum() == 100 and cup.sum() == 16 and not (cup & ~disc).any()


def test_labelme_without_the_label(tmp_path: Path) -> None:
    path = _labelme(tmp_path / "image_7.json", [
        {"label": "disc", "points": [[2, 2], [11, 2], [11, 11]], "shape_type": "polygon"}])
    assert LabelmePolygons(("cup",), optional=True)(path, (20, 30), MAJORITY) is None
    with pytest.raises(LabelFormatError, match=r"image_7\.json.*no polygon labelled cup"):
        LabelmePolygons(("cup",))(path, (20, 30), MAJORITY)


def test_labelme_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(LabelFormatError, match="broken.json"):
        LabelmePolygons(("disc",))(bad, (20, 30), MAJORITY)
    other = _labelme(tmp_path / "other.json", [], hw=(40, 30))
    with pytest.raises(SizeMismatchError, match="other.json"):
        LabelmePolygons(("disc",))(other, (20, 30), MAJORITY)
    circle = _labelme(tmp_path / "circle.json", [
        {"label": "disc", "points": [[5, 5], [9, 5]], "shape_type": "circle"}])
    with pytest.raises(LabelFormatError, match="circle.json.*only polygons"):
        LabelmePolygons(("disc",))(circle, (20, 30), MAJORITY)


def test_contour_text(tmp_path: Path) -> None:
    path = tmp_path / "RET002OD_disc_exp1.txt"
    path.write_text("10 5\n20 5\n20 15\n10 15\n")
    assert ContourText()(path, (30, 40), MAJORITY).sum() == 121


def test_contour_odd_number_of_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "RET002OD_cup_exp1.txt"
    path.write_text("10 5\n20 5\n20\n10 15\n")
    with pytest.raises(LabelFormatError, match=r"RET002OD_cup_exp1\.txt.*odd number"):
        ContourText()(path, (30, 40), MAJORITY)
    path.write_text("10 5\n20 x\n")
    with pytest.raises(LabelFormatError, match="RET002OD_cup_exp1.txt"):
        ContourText()(path, (30, 40), MAJORITY)


def test_mat_map(tmp_path: Path) -> None:
    arr = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    path = tmp_path / "001.mat"
    scipy.io.savemat(path, {"mask": arr})
    np.testing.assert_array_equal(MatMap("mask", (1, 2))(path, (2, 3), MAJORITY), arr > 0)
    np.testing.assert_array_equal(MatMap("mask", (2,))(path, (2, 3), MAJORITY), arr == 2)


def test_mat_without_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "002.mat"
    scipy.io.savemat(path, {"seg": np.zeros((2, 2))})
    with pytest.raises(LabelFormatError, match=r"002\.mat.*no variable 'mask'.*seg"):
        MatMap("mask", (1, 2))(path, (2, 2), MAJORITY)
    (tmp_path / "003.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(LabelFormatError, match="003.mat"):
        MatMap("mask", (1, 2))(tmp_path / "003.mat", (2, 2), MAJORITY)


def test_default_reader_is_binary_image(tmp_path: Path) -> None:
    path = _png(tmp_path / "m.png", np.array([[0, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(decode_label(path, None, (1, 2), MAJORITY), [[False, True]])
