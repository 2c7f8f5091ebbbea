"""Bootstrap CIs, Holm's correction and paired Wilcoxon comparisons on synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from samlora.evaluation.stats import (
    bootstrap_ci,
    bootstrap_replicates,
    holm,
    paired_comparisons,
    rank_biserial,
    wilcoxon_p,
)


def _table(values: np.ndarray, method: str = "m", test_set: str = "drive",
           train_set: str = "drive", metric: str = "dice") -> pd.DataFrame:
    """Per-image table from a seeds × cases array."""
    rows = [{"method": method, "train_set": train_set, "test_set": test_set, "seed": str(s),
             "case": f"c{i:02d}", metric: float(v)}
            for s, row in enumerate(np.atleast_2d(values)) for i, v in enumerate(row)]
    return pd.DataFrame(rows)


# --- bootstrap ----------------------------------------------------------------------------

def test_constant_table_ci_is_the_value() -> None:
    low, high = bootstrap_ci(_table(np.full((3, 10), 0.8)), "dice", n_resamples=200)
    assert low == pytest.approx(0.8, abs=1e-12) and high == pytest.approx(0.8, abs=1e-12)


def test_deterministic_by_seed() -> None:
    values = np.random.default_rng(1).uniform(0.6, 0.9, size=(3, 15))
    table = _table(values)
    assert bootstrap_ci(table, "dice", seed=3) == bootstrap_ci(table, "dice", seed=3)
    assert bootstrap_ci(table, "dice", seed=3) != bootstrap_ci(table, "dice", seed=4)


def test_replicates_match_a_naive_loop() -> None:
    values = np.random.default_rng(2).uniform(size=(3, 7))
    values[1, 2] = np.nan  # skipped in that seed's mean
    reps = bootstrap_replicates(values, n_resamples=50, seed=5)
    rng = np.random.default_rng(5)
    seeds = rng.integers(0, 3, size=(50, 3))
    images = rng.integers(0, 7, size=(50, 7))
    naive = [np.mean([np.nanmean(values[s][images[b]]) for s in seeds[b]]) for b in range(50)]
    np.testing.assert_allclose(reps, naive, rtol=0, atol=1e-12)


def test_ci_contains_the_estimate_and_covers_the_true_mean() -> None:
    # images ~ N(0.75, 0.05); 3 seeds add a small shift each; the CI of the mean should
    # contain the observed mean, and over repeated samples cover 0.75 most of the time
    rng = np.random.default_rng(0)
    hits = 0
    trials = 40
    for t in range(trials):
        images = rng.normal(0.75, 0.05, size=20)
        values = images[None, :] + rng.normal(0, 0.01, size=(3, 1))
        low, high = bootstrap_ci(_table(values), "dice", n_resamples=400, seed=t)
        assert low <= values.mean() <= high
        assert 0.0 < high - low < 0.1
        hits += low <= 0.75 <= high
    assert hits >= 0.8 * trials  # nominal 95 %; the percentile bootstrap runs a bit narrow


def test_width_shrinks_with_more_images_and_level() -> None:
    rng = np.random.default_rng(3)
    small = _table(rng.normal(0.7, 0.1, size=(2, 10)))
    large = _table(rng.normal(0.7, 0.1, size=(2, 200)))
    w = lambda t, lv=0.95: np.diff(bootstrap_ci(t, "dice", n_resamples=500, level=lv))[0]
    assert w(large) < w(small)
    assert w(small, 0.5) < w(small, 0.95)


def test_bootstrap_edge_cases() -> None:
    nan_table = _table(np.full((2, 4), np.nan))
    assert all(np.isnan(bootstrap_ci(nan_table, "dice")))
    one = bootstrap_ci(_table(np.array([[0.5, 0.7]])), "dice", n_resamples=300)
    assert 0.5 <= one[0] <= one[1] <= 0.7
    mixed = pd.concat([_table(np.ones((1, 3))), _table(np.ones((1, 3)), method="other")])
    with pytest.raises(ValueError, match="one method"):
        bootstrap_ci(mixed, "dice")
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(_table(np.ones((1, 3))), "dice", level=1.5)


# --- Holm ---------------------------------------------------------------------------------

def test_holm_hand_computed() -> None:
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> max(0.06, .04)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # capped at 1, nan left out of m: m = 3 -> 0.2·3 = 0.6, 0.5·2 = 1.0, 0.9·1 -> 1.0
    out = holm([0.5, np.nan, 0.2, 0.9])
    np.testing.assert_allclose(out, [1.0, np.nan, 0.6, 1.0])
    np.testing.assert_allclose(holm([0.01]), [0.01])
    assert holm([]).size == 0


def test_holm_ties_keep_monotone() -> None:
    # 0.02·3 = 0.06 for both tied; 0.03·1 = 0.03 -> raised to 0.06
    np.testing.assert_allclose(holm([0.02, 0.03, 0.02]), [0.06, 0.06, 0.06])


# --- Wilcoxon and effect size -------------------------------------------------------------

def test_wilcoxon_known_answers() -> None:
    d = np.arange(1, 11) / 100.0  # 10 positive, no ties: exact two-sided p = 2 / 2**10
    assert wilcoxon_p(d) == pytest.approx(2 / 1024)
    assert rank_biserial(d) == 1.0 and rank_biserial(-d) == -1.0
    assert np.isnan(wilcoxon_p(np.array([0.0, 0.0, 0.1])))  # one non-zero pair
    assert np.isnan(wilcoxon_p(np.zeros(5))) and np.isnan(rank_biserial(np.zeros(5)))
    # ranks of |d| = 1, 2, 3, 4; W+ = 1 + 4 = 5, W- = 2 + 3 = 5 -> 0
    assert rank_biserial(np.array([0.1, -0.2, -0.3, 0.4, 0.0])) == pytest.approx(0.0)
    rng = np.random.default_rng(4)
    d = rng.normal(0.02, 0.05, size=30)
    d[:3] = 0.0
    assert wilcoxon_p(d) == pytest.approx(
        wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


# --- paired comparisons -------------------------------------------------------------------

def _study() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    base = rng.uniform(0.6, 0.8, size=12)
    noise = lambda: rng.normal(0, 0.002, size=(3, 12))
    ref = _table(base + noise(), method="ref")
    better = _table(base + 0.05 + noise(), method="better")     # higher on every image
    same = _table(np.tile(base, (3, 1)), method="same")          # differs by ref's noise only
    other = _table(rng.uniform(0.6, 0.8, size=(2, 5)), method="ref", test_set="chase_db1")
    other2 = _table(rng.uniform(0.6, 0.8, size=(2, 5)) - 0.1, method="better",
                    test_set="chase_db1")
    return pd.concat([ref, better, same, other, other2], ignore_index=True)


def test_paired_comparisons_known_answer() -> None:
    table = paired_comparisons(_study(), "ref", ["dice"])
    assert list(table.columns) == ["test_set", "method", "train_set", "reference",
                                   "reference_train_set", "metric", "n", "median_diff",
                                   "mean_diff", "ci_low", "ci_high", "effect_size", "p",
                                   "p_holm"]
    assert len(table) == 3 and "ref" not in set(table["method"])
    row = table.set_index(["test_set", "method"]).loc[("drive", "better")]
    assert row["n"] == 12 and row["effect_size"] == 1.0
    assert row["p"] == pytest.approx(2 / 2**12)  # exact: all 12 differences positive
    assert row["median_diff"] == pytest.approx(0.05, abs=0.005)
    chase = table.set_index(["test_set", "method"]).loc[("chase_db1", "better")]
    assert chase["n"] == 5 and chase["reference"] == "ref"
    np.testing.assert_allclose(table["p_holm"], holm(table["p"].to_numpy()))


def test_pairing_on_case_and_seed_averaging() -> None:
    ref = _table(np.array([[0.5, 0.6, 0.7, 0.8]]), method="ref")
    # two seeds averaging to ref + [0.1, 0.2, -0.05, 0.0]; case c03 only in ref
    meth = _table(np.array([[0.5, 0.9, 0.6, 0.9], [0.7, 0.7, 0.7, 0.7]]), method="m")
    meth = meth[meth["case"] != "c03"]
    ref = pd.concat([ref, _table(np.array([[0.0, 0.0, 0.0, 0.0, 0.9]]), method="ref")
                     .query("case == 'c04'").assign(seed="0")])
    out = paired_comparisons(pd.concat([ref, meth]), "ref", ["dice"]).iloc[0]
    # pairs c00: 0.6-0.5, c01: 0.8-0.6, c02: 0.65-0.7 -> diffs 0.1, 0.2, -0.05
    assert out["n"] == 3
    assert out["median_diff"] == pytest.approx(0.1)
    assert out["mean_diff"] == pytest.approx(0.25 / 3)
    assert out["ci_low"] <= out["mean_diff"] <= out["ci_high"]
    # ranks of |d|: 0.05 -> 1, 0.1 -> 2, 0.2 -> 3; (5 - 1) / 6
    assert out["effect_size"] == pytest.approx(4 / 6)
    assert out["p"] == pytest.approx(wilcoxon([0.1, 0.2, -0.05]).pvalue)


def test_human_reference_pairs_with_every_training_set() -> None:
    human = _table(np.array([[0.7, 0.7, 0.7]]), method="human", train_set="-")
    a = _table(np.array([[0.8, 0.9, 0.75]]), method="m", train_set="drive")
    b = _table(np.array([[0.6, 0.6, 0.6]]), method="m", train_set="stare")
    out = paired_comparisons(pd.concat([human, a, b]), "human", ["dice"])
    assert list(out["train_set"]) == ["drive", "stare"]
    assert list(out["reference_train_set"]) == ["-", "-"]
    assert list(out["effect_size"]) == [1.0, -1.0]


def test_paired_comparisons_errors() -> None:
    with pytest.raises(ValueError, match="reference method"):
        paired_comparisons(_study(), "nobody", ["dice"])
    with pytest.raises(ValueError, match="lacks metric"):
        paired_comparisons(_study(), "ref", ["auc"])


def test_prompted_method_against_an_unprompted_reference() -> None:
    human = _table(np.array([[0.7, 0.7, 0.7]]), method="human", train_set="-")
    box = _table(np.array([[0.8, 0.9, 0.75]]), method="sam").assign(prompt="box")
    point = _table(np.array([[0.6, 0.65, 0.5]]), method="sam").assign(prompt="point")
    table = pd.concat([human.assign(prompt="none"), box, point], ignore_index=True)
    out = paired_comparisons(table, "human", ["dice"])
    assert list(out.columns[-1:]) == ["prompt"] and list(out["prompt"]) == ["box", "point"]
    assert list(out["effect_size"]) == [1.0, -1.0]


def test_paired_diff_ci_against_scipy_bootstrap() -> None:
    """The percentile interval of the mean paired difference matches scipy's bootstrap of
    the same statistic (different draws: within Monte-Carlo error), is exact for constant
    differences, and is nan with one pair."""
    from scipy.stats import bootstrap

    from samlora.evaluation.stats import paired_diff_ci

    d = np.random.default_rng(3).normal(0.02, 0.05, size=60)
    ours = paired_diff_ci(d, n_resamples=20000)
    ref = bootstrap((d,), np.mean, n_resamples=20000, method="percentile",
                    random_state=np.random.default_rng(4)).confidence_interval
    np.testing.assert_allclose(ours, (ref.low, ref.high), atol=2e-3)
    assert paired_diff_ci(d) == paired_diff_ci(d)  # seeded
    assert paired_diff_ci(np.full(5, 0.1)) == pytest.approx((0.1, 0.1))
    assert all(np.isnan(paired_diff_ci(np.array([0.3]))))
