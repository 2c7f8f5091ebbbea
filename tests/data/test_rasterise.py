"""Polygon rasterisation: known pixel counts, x/y orientation, clipping, bad vertices."""

from __future__ import annotations

import numpy as np
import pytest

from samlora.data.rasterise import rasterise_polygon, rasterise_polygons


def test_rectangle_covers_its_pixels_inclusive() -> None:
    # corners x 10..20, y 5..15: 11 columns × 11 rows, outline included
    mask = rasterise_polygon([[10, 5], [20, 5], [20, 15], [10, 15]], (30, 40))
    assert mask.sum() == 121
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 15, 10, 20)


def test_right_triangle_pixel_count() -> None:
    # vertices (0,0), (10,0), (0,10): pixels with x + y <= 10 -> 11 + 10 + ... + 1 = 66
    mask = rasterise_polygon([[0, 0], [10, 0], [0, 10]], (20, 20))
    assert mask.sum() == 66
    yy, xx = np.mgrid[:20, :20]
    np.testing.assert_array_equal(mask, (xx + yy <= 10))


def test_x_is_column_and_y_is_row() -> None:
    # a wide, flat rectangle: 10 px along x, 3 px along y
    mask = rasterise_polygon([[0, 0], [9, 0], [9, 2], [0, 2]], (8, 12))
    assert mask[:3, :10].all() and mask.sum() == 30
    assert not mask[3:].any() and not mask[:, 10:].any()


def test_vertex_order_does_not_matter() -> None:
    square = [[2, 2], [6, 2], [6, 6], [2, 6]]
    np.testing.assert_array_equal(rasterise_polygon(square, (10, 10)),
                                  rasterise_polygon(square[::-1], (10, 10)))


def test_clipped_at_the_border() -> None:
    # square -5..5 on both axes: only x, y in 0..5 lie in the image -> 6 × 6
    mask = rasterise_polygon([[-5, -5], [5, -5], [5, 5], [-5, 5]], (30, 30))
    assert mask.sum() == 36 and mask[:6, :6].all()
    far = rasterise_polygon([[100, 100], [120, 100], [120, 120]], (30, 30))
    assert not far.any()


def test_union_of_pieces() -> None:
    a = np.array([[0, 0], [3, 0], [3, 3], [0, 3]])
    mask = rasterise_polygons([a, a + 2], (10, 10))
    assert mask.sum() == 16 + 16 - 4  # two 4×4 squares overlapping in 2×2


@pytest.mark.parametrize(("points", "match"), [
    ([[0, 0], [5, 5]], "at least 3 vertices"),
    ([[0, 0, 1], [5, 5, 1], [3, 1, 1]], "x, y"),
    ([[0, 0], [5, float("nan")], [3, 1]], "nan"),
    ([["a", 0], [5, 5], [3, 1]], "not numbers"),
])
def test_bad_vertices_named(points: list, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        rasterise_polygon(points, (10, 10), what="case.json (disc)")
    assert "case.json (disc)" in str(info.value)
