"""Builders of tiny disc/cup datasets in their official layouts, from synthetic images.

Every case has the same geometry, so the prepared masks have known pixel counts: the disc
is the rectangle x 10..29, y 8..23 (20 × 16 = 320 px), the cup x 15..24, y 12..19
(10 × 8 = 80 px), in a 48 × 64 (h × w) image.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

H, W = 48, 64
DISC_XY = ((10, 8), (29, 23))
CUP_XY = ((15, 12), (24, 19))
DISC_PX, CUP_PX = 320, 80


def corners(box: tuple[tuple[int, int], tuple[int, int]], dx: int = 0) -> list[list[int]]:
    """The four (x, y) corners of a box, shifted by ``dx`` along x."""
    (x0, y0), (x1, y1) = box
    return [[x0 + dx, y0], [x1 + dx, y0], [x1 + dx, y1], [x0 + dx, y1]]


def box_mask(box: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """H×W bool, True inside the box (edges included)."""
    (x0, y0), (x1, y1) = box
    mask = np.zeros((H, W), bool)
    mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask


def write_image(path: Path, seed: int) -> Path:
    """A reddish noise image (JPEG or PNG by suffix)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 120, (H, W, 3), dtype=np.uint8)
    img[..., 0] += 100
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def one_map() -> np.ndarray:
    """REFUGE convention: 255 background, 128 rim, 0 cup."""
    grey = np.full((H, W), 255, np.uint8)
    grey[box_mask(DISC_XY)] = 128
    grey[box_mask(CUP_XY)] = 0
    return grey


def labelme(path: Path, names: dict[str, list[list[int]]]) -> Path:
    """A labelme JSON with one polygon per label name."""
    shapes = [{"label": k, "points": v, "shape_type": "polygon", "flags": {}}
              for k, v in names.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "5.0.1", "shapes": shapes, "imagePath": "x.jpg",
                                "imageHeight": H, "imageWidth": W}))
    return path


def build_refuge2(root: Path) -> list[str]:
    """Two cases per split (test: one under G/, one under N/); returns the case ids."""
    cases = {"train": [("Training400/Glaucoma/g0001.jpg",
                        "Annotation-Training400/Disc_Cup_Masks/Glaucoma/g0001.bmp"),
                       ("Training400/Non-Glaucoma/n0002.jpg",
                        "Annotation-Training400/Disc_Cup_Masks/Non-Glaucoma/n0002.bmp")],
             "val": [(f"REFUGE-Validation400/V000{i}.jpg",
                      f"REFUGE-Validation400-GT/Disc_Cup_Masks/V000{i}.bmp") for i in (1, 2)],
             "test": [("Test400/T0001.jpg", "REFUGE-Test-GT/Disc_Cup_Masks/G/T0001.bmp"),
                      ("Test400/T0002.jpg", "REFUGE-Test-GT/Disc_Cup_Masks/N/T0002.bmp")]}
    for i, (img, lab) in enumerate(p for v in cases.values() for p in v):
        write_image(root / img, i)
        (root / lab).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(one_map()).save(root / lab)
    return [f"refuge2_{Path(img).stem}" for v in cases.values() for img, _ in v]


def build_idrid(root: Path, ids: tuple[int, ...] = (1, 2, 55)) -> None:
    """IDRiD_NN.jpg with a red-on-black optic disc TIFF each."""
    top = root / "A. Segmentation"
    for n in ids:
        sub = "a. Training Set" if n <= 54 else "b. Testing Set"
        write_image(top / "1. Original Images" / sub / f"IDRiD_{n:02d}.jpg", n)
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[box_mask(DISC_XY), 0] = 255
        gt = top / "2. All Segmentation Groundtruths" / sub / "5. Optic Disc"
        tif = gt / f"IDRiD_{n:02d}_OD.tif"
        tif.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(tif)


def build_origa(root: Path, ids: tuple[str, ...] = ("001", "002", "003"),
                variable: str = "mask") -> None:
    """Images/NNN.jpg and Semi-automatic-annotations/NNN.mat (0 bg, 1 rim, 2 cup)."""
    for i, n in enumerate(ids):
        write_image(root / "Images" / f"{n}.jpg", i)
        arr = box_mask(DISC_XY).astype(np.uint8)
        arr[box_mask(CUP_XY)] = 2
        (root / "Semi-automatic-annotations").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "Semi-automatic-annotations" / f"{n}.mat", {variable: arr})


def build_g1020(root: Path, n: int = 4) -> None:
    """Images/image_K.jpg + .json; image_0 has no cup polygon."""
    for k in range(n):
        write_image(root / "Images" / f"image_{k}.jpg", k)
        shapes = {"disc": corners(DISC_XY)} | ({"cup": corners(CUP_XY)} if k else {})
        labelme(root / "Images" / f"image_{k}.json", shapes)


def build_grape(root: Path, n: int = 4) -> None:
    """'ROI images'/K_OD_1.jpg + json/K_OD_1.json with labels OD / OC."""
    for k in range(1, n + 1):
        write_image(root / "ROI images" / f"{k}_OD_1.jpg", k)
        labelme(root / "json" / f"{k}_OD_1.json",
                {"OD": corners(DISC_XY), "OC": corners(CUP_XY)})


def build_papila(root: Path, ids: tuple[str, ...] = ("RET002OD", "RET002OS", "RET004OD",
                                                     "RET004OS")) -> None:
    """FundusImages/RETNNN{OD,OS}.jpg + contour text per structure and expert.

    Expert 2 draws every outline one pixel further right (same areas, shifted).
    """
    contours = root / "ExpertsSegmentations" / "Contours"
    contours.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(ids):
        write_image(root / "FundusImages" / f"{n}.jpg", i)
        for struct, box in (("disc", DISC_XY), ("cup", CUP_XY)):
            for exp, dx in ((1, 0), (2, 1)):
                text = "\n".join(f"{x} {y}" for x, y in corners(box, dx))
                (contours / f"{n}_{struct}_exp{exp}.txt").write_text(text + "\n")


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    """Zip every file under ``folder`` (names relative to it, under ``prefix``)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{prefix}{p.relative_to(folder)}")
    return archive
