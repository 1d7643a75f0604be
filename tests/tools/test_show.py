"""``swinref show``: the PNGs are written, and what they draw is what the code computes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import array_api_compat.numpy as xp  # noqa: E402

from swinref.cli import main  # noqa: E402
from swinref.core.windows import region_ids, shift_mask  # noqa: E402
from swinref.tools import show  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_bytes=2_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name}: expected a PNG signature, got {data[:8]!r}"
    # a figure with axes and text is several kB; an empty canvas compresses to a few hundred bytes
    assert len(data) >= min_bytes, f"{path.name}: expected at least {min_bytes} bytes, got {len(data)}"


@pytest.mark.parametrize(
    "size, window, shift",
    [
        ((8, 8), (4, 4), (2, 2)),  # the paper's picture
        ((6, 8), (3, 4), (1, 2)),  # non-square window, per-axis shift
        ((7, 10), (3, 4), (1, 3)),  # padded to 9x12
        ((4, 4), (4, 4), (0, 0)),  # no shift: one region
    ],
)
def test_drawn_region_ids_and_masks_are_the_codes(tmp_path, size, window, shift):
    g = show.Geometry(size, window, shift)
    drawn = show.draw_window_regrouping(g, tmp_path / "regroup.png")
    expected_after = np.asarray(region_ids(g.padded, window, shift, xp=xp))
    assert np.array_equal(drawn["after"], expected_after), (
        f"after-roll ids drawn:\n{drawn['after']}\nexpected swinref.core.windows.region_ids:\n{expected_after}"
    )
    # before the roll, token (i, j) carries the id it gets at ((i - s) mod H, (j - s) mod W)
    Hp, Wp = g.padded
    for i in range(Hp):
        for j in range(Wp):
            rolled = expected_after[(i - shift[0]) % Hp, (j - shift[1]) % Wp]
            assert drawn["before"][i, j] == rolled, (
                f"before-roll id at {(i, j)}: expected {rolled}, got {drawn['before'][i, j]}"
            )
    masks = show.draw_masks(g, tmp_path / "masks.png")
    expected_masks = np.asarray(shift_mask(g.padded, window, shift, xp=xp))
    assert np.array_equal(masks, expected_masks), "masks drawn differ from swinref.core.windows.shift_mask"
    # the regular windows after the roll are drawn at multiples of M
    expected_lines = (list(range(window[0], Hp, window[0])), list(range(window[1], Wp, window[1])))
    assert drawn["lines_after"] == expected_lines, (
        f"window lines after the roll: expected {expected_lines}, got {drawn['lines_after']}"
    )
    _assert_png(tmp_path / "regroup.png")
    _assert_png(tmp_path / "masks.png")


def test_the_paper_geometry_gives_nine_pieces_and_four_windows(tmp_path):
    g = show.Geometry((8, 8), (4, 4), (2, 2))
    drawn = show.draw_window_regrouping(g, tmp_path / "r.png")
    pieces = (len(drawn["lines_before"][0]) + 1) * (len(drawn["lines_before"][1]) + 1)
    assert pieces == 9, f"expected the shifted windows to cut the 8x8 grid into 9 pieces, got {pieces}"
    assert len(np.unique(drawn["after"])) == 9, f"expected 9 region ids, got {np.unique(drawn['after'])}"


@pytest.mark.parametrize("query", [(0, 0), (7, 7), (3, 5)])
def test_attention_map_stays_in_the_query_region(query):
    g = show.Geometry((8, 8), (4, 4), (2, 2))
    out = show.query_attention(g, query, seed=1)
    w = out["weights"]
    assert w[query] > 0, f"query {query} should attend to itself, weight {w[query]}"
    inside = ~np.isnan(w)
    assert inside.sum() == 16, f"expected the 16 tokens of one window drawn, got {inside.sum()}"
    assert abs(np.nansum(w) - 1.0) < 1e-12, f"weights should sum to 1 (softmax), got {np.nansum(w)!r}"
    # tokens of another region get exp(-100)-small weights: compare with the drawn region ids
    before = show.region_grids(g)["before"]
    other = inside & (before != before[query])
    assert np.all(w[other] < 1e-30), f"weight outside the query's region: max {w[other].max(initial=0)!r}"


def test_cli_writes_four_pngs(tmp_path, capsys):
    rc = main(
        [
            "show",
            "--out",
            str(tmp_path),
            "--size",
            "7",
            "10",
            "--window",
            "3",
            "4",
            "--shift",
            "1",
            "2",
            "--query",
            "6",
            "9",
        ]
    )
    assert rc == 0, f"expected exit 0, got {rc}"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["attention.png", "cyclic_shift.png", "masks.png", "window_regrouping.png"], names
    for p in tmp_path.iterdir():
        _assert_png(p)
    assert str(tmp_path / "masks.png") in capsys.readouterr().out, "the paths written should be printed"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--window", "4", "--shift", "4"], "must be below the window"),
        (["--window", "0"], "argument --window: expected an int >= 1, got '0'"),
        (["--window", "4", "3", "2"], "window (Mh, Mw) must be one or two integers >= 1"),
        (["--query", "8", "0"], "outside the 8x8 grid"),
    ],
)
def test_cli_rejects_bad_geometry(tmp_path, capsys, argv, words):
    rc = main(["show", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and words in err, f"expected exit 2 naming {words!r}, got {rc}: {err}"


def test_readme_picture_is_commit_sized():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "images" / "shift_regions.png"
    _assert_png(path)
    assert path.stat().st_size < 150_000, f"{path} is {path.stat().st_size} bytes; keep it under 150 kB"
