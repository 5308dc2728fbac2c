"""Tests for workbench.agreement: kappas, bootstrap, confusion, flips, win rate, sign test."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.agreement import (
    AgreementError,
    FailPrecisionRecall,
    agreement_by_tag,
    cohen_kappa,
    confusion,
    fail_precision_recall,
    fleiss_kappa,
    flip_share,
    kappa_interval,
    pairwise_kappas,
    sign_test,
    weighted_kappa,
    win_rate,
)
from workbench.errors import ConfigError
from workbench.stats import Interval, mcnemar_exact

# The classic 2x2 example: 50 items, yes/yes 20, yes/no 5, no/yes 10, no/no 15.
# p_o = 35/50 = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
CLASSIC_A = ["yes"] * 25 + ["no"] * 25
CLASSIC_B = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15

# A 3-point ordinal example: the table is [[3, 1, 0], [1, 1, 1], [0, 1, 2]], both marginals
# (4, 3, 3). Agreement weights 1 - |i-j|/2 (linear) or 1 - ((i-j)/2)^2 (quadratic):
#   linear:    p_o = 0.6 + 0.5 * 0.4 = 0.8,  p_e = (34 + 0.5 * 42) / 100 = 0.55,  kappa = 5/9
#   quadratic: p_o = 0.6 + 0.75 * 0.4 = 0.9, p_e = (34 + 0.75 * 42) / 100 = 0.655, kappa = 49/69
#   unweighted: p_o = 0.6, p_e = 0.34, kappa = 13/33
ORD_A = [1, 1, 2, 2, 3, 3, 1, 2, 3, 1]
ORD_B = [1, 2, 2, 3, 3, 3, 1, 1, 2, 1]

# Fleiss (1971) as on Wikipedia's "Fleiss' kappa" page: 10 items, 14 raters, 5 categories,
# counts per item and category. P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_COUNTS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def _expand(counts: list[list[int]]) -> list[list[int]]:
    """Items x categories counts to an items x raters matrix of category labels."""
    return [[cat for cat, c in enumerate(row) for _ in range(c)] for row in counts]


def _reference_weighted(a: list[int], b: list[int], k: int, power: int) -> Fraction:
    """Textbook weighted kappa in exact fractions, with agreement weights 1 - (|i-j|/(k-1))^p."""
    n = len(a)
    table = [[0] * k for _ in range(k)]
    for x, y in zip(a, b, strict=True):
        table[x][y] += 1
    rows = [sum(table[i]) for i in range(k)]
    cols = [sum(table[i][j] for i in range(k)) for j in range(k)]

    def w(i: int, j: int) -> Fraction:
        return 1 - Fraction(abs(i - j) ** power, (k - 1) ** power)

    cells = [(i, j) for i in range(k) for j in range(k)]
    p_o = sum((w(i, j) * table[i][j] for i, j in cells), Fraction(0)) / n
    p_e = sum((w(i, j) * rows[i] * cols[j] for i, j in cells), Fraction(0)) / (n * n)
    return (p_o - p_e) / (1 - p_e)


def _correlated(seed: int, n: int, k: int, agree: float) -> tuple[list[int], list[int]]:
    """A human and a judge on n items: the judge copies the human with chance ``agree``."""
    rng = np.random.default_rng(seed)
    human = rng.integers(0, k, size=n)
    noise = rng.integers(0, k, size=n)
    judge = np.where(rng.random(n) < agree, human, noise)
    return human.tolist(), judge.tolist()


labels_st = st.lists(st.sampled_from(["pass", "fail", "unsure"]), min_size=1, max_size=60)
pairs_st = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


# --- Cohen's and weighted kappa: hand-computed values -------------------------------------------


def test_cohen_kappa_classic_two_by_two() -> None:
    assert cohen_kappa(CLASSIC_A, CLASSIC_B) == pytest.approx(0.4, abs=1e-12)


def test_cohen_kappa_ordinal_example_unweighted() -> None:
    assert cohen_kappa(ORD_A, ORD_B) == pytest.approx(13 / 33, abs=1e-12)


def test_weighted_kappa_hand_values() -> None:
    cats = [1, 2, 3]
    assert weighted_kappa(ORD_A, ORD_B, categories=cats) == pytest.approx(5 / 9, abs=1e-12)
    assert weighted_kappa(ORD_A, ORD_B, categories=cats, weights="quadratic") == pytest.approx(
        49 / 69, abs=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(pairs_st, st.sampled_from([(1, "linear"), (2, "quadratic")]))
def test_weighted_kappa_matches_textbook_formula(
    pair: tuple[list[int], list[int]], scheme: tuple[int, str]
) -> None:
    a, b = pair
    power, weights = scheme
    got = weighted_kappa(a, b, categories=[0, 1, 2, 3], weights=weights)  # type: ignore[arg-type]
    if len(set(a) | set(b)) == 1:
        assert got == 1.0  # the textbook formula is 0/0 here; see the module docstring
    else:
        assert got == pytest.approx(float(_reference_weighted(a, b, 4, power)), abs=1e-12)


def test_unused_categories_do_not_change_cohen_kappa() -> None:
    assert cohen_kappa(CLASSIC_A, CLASSIC_B, labels=["no", "maybe", "yes"]) == pytest.approx(0.4)


def test_a_weighted_scale_in_reverse_gives_the_same_kappa() -> None:
    forward = weighted_kappa(ORD_A, ORD_B, categories=[1, 2, 3], weights="quadratic")
    backward = weighted_kappa(ORD_A, ORD_B, categories=[3, 2, 1], weights="quadratic")
    assert forward == pytest.approx(backward, abs=1e-12)


# --- Kappa properties ---------------------------------------------------------------------------


@given(labels_st)
def test_a_rater_agrees_perfectly_with_itself(a: list[str]) -> None:
    assert cohen_kappa(a, a) == 1.0
    assert weighted_kappa(a, a, categories=["fail", "unsure", "pass"]) == 1.0


@given(pairs_st)
def test_kappa_is_symmetric(pair: tuple[list[int], list[int]]) -> None:
    a, b = pair
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa(b, a), abs=1e-12)
    for weights in ("linear", "quadratic"):
        assert weighted_kappa(a, b, categories=range(4), weights=weights) == pytest.approx(  # type: ignore[arg-type]
            weighted_kappa(b, a, categories=range(4), weights=weights),  # type: ignore[arg-type]
            abs=1e-12,
        )


@given(pairs_st, st.permutations(range(4)))
def test_cohen_kappa_ignores_what_the_labels_are_called(
    pair: tuple[list[int], list[int]], perm: list[int]
) -> None:
    a, b = pair
    renamed = ([f"c{perm[x]}" for x in a], [f"c{perm[x]}" for x in b])
    assert cohen_kappa(*renamed) == pytest.approx(cohen_kappa(a, b), abs=1e-12)


@given(
    st.lists(st.booleans(), min_size=1, max_size=80).flatmap(
        lambda a: st.tuples(st.just(a), st.lists(st.booleans(), min_size=len(a), max_size=len(a)))
    )
)
def test_weighted_kappa_equals_cohen_for_two_categories(
    pair: tuple[list[bool], list[bool]],
) -> None:
    a, b = pair
    cohen = cohen_kappa(a, b, labels=[False, True])
    for weights in ("linear", "quadratic"):
        assert weighted_kappa(
            a,
            b,
            categories=[False, True],
            weights=weights,  # type: ignore[arg-type]
        ) == pytest.approx(cohen, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.floats(0.0, 1.0))
def test_shuffling_one_rater_drives_kappa_to_chance(seed: int, k: int, agree: float) -> None:
    human, judge = _correlated(seed, 2000, k, agree)
    shuffled = np.random.default_rng(seed + 1).permutation(judge).tolist()
    assert abs(cohen_kappa(human, shuffled)) < 0.1
    cats = list(range(k))
    assert abs(weighted_kappa(human, shuffled, categories=cats, weights="quadratic")) < 0.1


# --- Kappa edge cases ---------------------------------------------------------------------------


def test_one_shared_category_is_perfect_agreement_not_nan() -> None:
    # sklearn's cohen_kappa_score returns NaN here (0/0); every pair agrees, so we say 1.0.
    assert cohen_kappa(["pass"] * 5, ["pass"] * 5) == 1.0
    assert weighted_kappa([2] * 5, [2] * 5, categories=[1, 2, 3]) == 1.0
    assert kappa_interval(["pass"] * 5, ["pass"] * 5) == Interval(1.0, 1.0, 1.0, 0.95, 5)


def test_a_constant_rater_against_a_varying_one_is_chance() -> None:
    # p_o = 1/2, p_e = (2 * 1) / 4 = 1/2: kappa 0, not the degenerate case.
    assert cohen_kappa(["pass", "pass"], ["pass", "fail"]) == 0.0


def test_complete_disagreement_is_minus_one() -> None:
    assert cohen_kappa(["pass", "fail"], ["fail", "pass"]) == -1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: cohen_kappa([], []),
        lambda: weighted_kappa([], [], categories=[1, 2]),
        lambda: kappa_interval([], []),
        lambda: fleiss_kappa([]),
        lambda: agreement_by_tag([], [], []),
        lambda: win_rate([]),
    ],
)
def test_empty_input_raises_a_value_error(call: object) -> None:
    with pytest.raises(ValueError, match="at least one"):
        call()  # type: ignore[operator]


def test_errors_are_value_errors_and_workbench_config_errors() -> None:
    assert issubclass(AgreementError, ValueError)
    assert issubclass(AgreementError, ConfigError)


def test_unpaired_labels_raise() -> None:
    with pytest.raises(AgreementError, match="got 2 and 3 labels"):
        cohen_kappa(["a", "b"], ["a", "b", "c"])


def test_a_label_outside_the_categories_is_named() -> None:
    with pytest.raises(AgreementError, match=r"b\[1\] = 4 is not one of the categories"):
        weighted_kappa([1, 2], [1, 4], categories=[1, 2, 3])


def test_bad_weights_and_categories_raise() -> None:
    with pytest.raises(AgreementError, match="unknown weights 'cubic'"):
        weighted_kappa([1], [1], categories=[1, 2], weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(AgreementError, match="distinct"):
        weighted_kappa([1], [1], categories=[1, 1])
    with pytest.raises(AgreementError, match="needs categories"):
        kappa_interval([1], [1], weighted="linear")


# --- Bootstrap interval -------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(30, 300),
    st.integers(2, 4),
    st.floats(0.3, 0.95),
    st.sampled_from([None, "linear", "quadratic"]),
)
def test_interval_contains_the_estimate_and_is_deterministic(
    seed: int, n: int, k: int, agree: float, weighted: str | None
) -> None:
    human, judge = _correlated(seed, n, k, agree)
    kwargs = {"weighted": weighted, "categories": list(range(k)), "resamples": 400, "seed": seed}
    first = kappa_interval(human, judge, **kwargs)  # type: ignore[arg-type]
    assert first == kappa_interval(human, judge, **kwargs)  # type: ignore[arg-type]
    assert first.low <= first.estimate <= first.high
    assert first.low >= -1.0 and first.high <= 1.0
    point = (
        cohen_kappa(human, judge)
        if weighted is None
        else weighted_kappa(human, judge, categories=range(k), weights=weighted)  # type: ignore[arg-type]
    )
    assert first.estimate == pytest.approx(point, abs=1e-12)
    assert first.n == n


def test_interval_matches_a_slow_loop_over_the_same_draws() -> None:
    human, judge = _correlated(7, 50, 3, 0.7)
    got = kappa_interval(human, judge, resamples=300, seed=11)
    idx = np.random.default_rng(11).integers(0, 50, size=(300, 50))
    values = [cohen_kappa([human[i] for i in row], [judge[i] for i in row]) for row in idx]
    low, high = np.quantile(values, [0.025, 0.975])
    assert got.low == pytest.approx(low, abs=1e-12)
    assert got.high == pytest.approx(high, abs=1e-12)


def test_interval_changes_with_the_seed_and_narrows_with_more_items() -> None:
    small = _correlated(3, 60, 3, 0.7)
    large = _correlated(3, 2000, 3, 0.7)
    a, b = kappa_interval(*small, seed=0), kappa_interval(*small, seed=1)
    assert (a.low, a.high) != (b.low, b.high)
    wide, narrow = kappa_interval(*small), kappa_interval(*large)
    assert narrow.high - narrow.low < (wide.high - wide.low) / 3


def test_interval_level_and_resamples_are_checked() -> None:
    with pytest.raises(AgreementError, match="level"):
        kappa_interval([1, 2], [1, 2], level=1.0)
    with pytest.raises(AgreementError, match="resamples"):
        kappa_interval([1, 2], [1, 2], resamples=0)


def test_interval_of_one_item_has_nan_bounds() -> None:
    got = kappa_interval(["pass"], ["fail"])
    assert got.estimate == 0.0 and math.isnan(got.low) and math.isnan(got.high)


# --- Fleiss' kappa and pairwise kappas ----------------------------------------------------------


def test_fleiss_kappa_wikipedia_example() -> None:
    ratings = _expand(FLEISS_COUNTS)
    assert all(len(row) == 14 for row in ratings)
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=5e-4)
    # The same numbers in exact arithmetic, from the page's P_i and p_j definitions.
    p_items = [Fraction(sum(c * c for c in row) - 14, 14 * 13) for row in FLEISS_COUNTS]
    p_cats = [Fraction(sum(col), 140) for col in zip(*FLEISS_COUNTS, strict=True)]
    p_bar, p_e = sum(p_items) / 10, sum(p * p for p in p_cats)
    assert float(p_bar) == pytest.approx(0.378, abs=5e-4)
    assert float(p_e) == pytest.approx(0.213, abs=5e-4)
    assert fleiss_kappa(ratings) == pytest.approx(float((p_bar - p_e) / (1 - p_e)), abs=1e-12)


def test_fleiss_kappa_of_two_raters_is_scotts_pi() -> None:
    # Scott's pi pools both raters' marginals: for the classic table p_e = 0.55^2 + 0.45^2.
    p_e = 0.55**2 + 0.45**2
    ratings = [[x, y] for x, y in zip(CLASSIC_A, CLASSIC_B, strict=True)]
    assert fleiss_kappa(ratings) == pytest.approx((0.7 - p_e) / (1 - p_e), abs=1e-12)


@given(st.lists(st.lists(st.sampled_from("xyz"), min_size=3, max_size=3), min_size=1))
def test_fleiss_kappa_is_at_most_one_and_one_on_unanimous_items(rows: list[list[str]]) -> None:
    assert fleiss_kappa(rows) <= 1.0 + 1e-12
    unanimous = [[row[0]] * 3 for row in rows]
    assert fleiss_kappa(unanimous) == 1.0


def test_fleiss_kappa_rejects_uneven_or_single_ratings() -> None:
    with pytest.raises(AgreementError, match="item 0 has 2, item 1 has 3"):
        fleiss_kappa([["a", "b"], ["a", "b", "c"]])
    with pytest.raises(AgreementError, match="at least two ratings"):
        fleiss_kappa([["a"], ["b"]])


def test_pairwise_kappas_cover_every_pair_in_order() -> None:
    raters = {"human": CLASSIC_A, "judge": CLASSIC_B, "copy": CLASSIC_A}
    got = pairwise_kappas(raters)
    assert list(got) == [("human", "judge"), ("human", "copy"), ("judge", "copy")]
    assert got[("human", "judge")] == pytest.approx(0.4)
    assert got[("human", "copy")] == 1.0
    assert got[("judge", "copy")] == pytest.approx(0.4)
    with pytest.raises(AgreementError, match="at least two raters"):
        pairwise_kappas({"human": CLASSIC_A})


# --- Confusion and fail precision/recall --------------------------------------------------------


def test_confusion_counts_rows_by_first_rater() -> None:
    got = confusion(CLASSIC_A, CLASSIC_B, ["yes", "no", "maybe"])
    expected = pd.DataFrame(
        [[20, 5, 0], [10, 15, 0], [0, 0, 0]],
        index=pd.Index(["yes", "no", "maybe"], name="human"),
        columns=pd.Index(["yes", "no", "maybe"], name="judge"),
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert int(got.to_numpy().sum()) == 50


def test_confusion_defaults_to_observed_labels_and_takes_axis_names() -> None:
    got = confusion(["b", "a"], ["a", "a"], names=("judge_1", "judge_2"))
    assert list(got.index) == ["a", "b"] and list(got.columns) == ["a", "b"]
    assert (got.index.name, got.columns.name) == ("judge_1", "judge_2")
    assert got.loc["b", "a"] == 1 and got.loc["a", "a"] == 1 and got.loc["a", "b"] == 0


def test_fail_precision_recall_hand_example() -> None:
    human = [True, True, False, False, False, True, True, False]
    judge = [False, True, False, True, False, True, False, False]
    # judge fails: 0, 2, 4, 6, 7 -> humans failed 2, 4, 7 (tp 3), passed 0, 6 (fp 2);
    # human fails not caught: 3 (fn 1); both pass: 1, 5 (tn 2).
    got = fail_precision_recall(human, judge)
    assert got == FailPrecisionRecall(precision=3 / 5, recall=3 / 4, tp=3, fp=2, fn=1, tn=2)
    assert got.n == 8
    assert got.to_dict()["recall"] == 0.75


def test_fail_precision_recall_is_none_when_undefined() -> None:
    got = fail_precision_recall([True, True], [True, True])
    assert (got.precision, got.recall, got.tn) == (None, None, 2)
    none_caught = fail_precision_recall([False, True], [True, True])
    assert (none_caught.precision, none_caught.recall) == (None, 0.0)
    empty = fail_precision_recall([], [])
    assert (empty.precision, empty.recall, empty.n) == (None, None, 0)


def test_fail_precision_recall_takes_zero_one_and_rejects_other_values() -> None:
    got = fail_precision_recall([1, 0], [0, 0])  # type: ignore[list-item]
    assert got == FailPrecisionRecall(0.5, 1.0, 1, 1, 0, 0)
    with pytest.raises(AgreementError, match=r"judge_pass\[0\] = 'pass'"):
        fail_precision_recall([True], ["pass"])  # type: ignore[list-item]


# --- Flips between repeats ----------------------------------------------------------------------


def test_flip_share_counts_items_with_repeats_only() -> None:
    verdicts: dict[str, list[object]] = {
        "a": ["pass", "pass"],
        "b": ["pass", "fail"],
        "c": ["fail"],  # one repeat: left out
        "d": [True, True, False],
        "e": [0.5, 0.5, 0.5],
    }
    assert flip_share(verdicts) == pytest.approx(2 / 4)


def test_flip_share_is_none_without_repeats_and_ignores_nan() -> None:
    assert flip_share({"a": ["pass"], "b": []}) is None
    assert flip_share({}) is None
    assert flip_share({"a": [1.0, math.nan]}) is None
    assert flip_share({"a": [1.0, math.nan, 0.0], "b": [1.0, 1.0]}) == 0.5


# --- Agreement per tag --------------------------------------------------------------------------


def test_agreement_by_tag_hand_example() -> None:
    a = ["pass", "pass", "fail", "fail", "pass"]
    b = ["pass", "fail", "fail", "pass", "pass"]
    tags = [["billing"], ["billing", "refund"], ["refund"], ["refund", "refund"], []]
    got = agreement_by_tag(a, b, tags)
    assert list(got.columns) == ["tag", "n", "agreement", "kappa"]
    assert got["tag"].tolist() == ["billing", "refund"]
    assert got["n"].tolist() == [2, 3]
    assert got["agreement"].tolist() == pytest.approx([1 / 2, 1 / 3])
    # billing: (pass, pass), (pass, fail) -> a constant rater: kappa 0.
    # refund: (pass, fail), (fail, fail), (fail, pass): p_o = 1/3, p_e = (1*1 + 2*2) / 9 = 5/9,
    # kappa = (1/3 - 5/9) / (4/9) = -1/2.
    assert got["kappa"].tolist() == pytest.approx([0.0, -0.5])


def test_agreement_by_tag_weighted_and_checks_shapes() -> None:
    got = agreement_by_tag(
        ORD_A, ORD_B, [["all"]] * len(ORD_A), weighted="linear", categories=[1, 2, 3]
    )
    assert got["kappa"].tolist() == pytest.approx([5 / 9])
    with pytest.raises(AgreementError, match="one list per item"):
        agreement_by_tag(["a"], ["a"], [["x"], ["y"]])
    with pytest.raises(AgreementError, match="needs categories"):
        agreement_by_tag(["a"], ["a"], [["x"]], weighted="linear")


# --- Pairwise win rate and sign test ------------------------------------------------------------


def test_win_rate_counts_ties_as_half() -> None:
    got = win_rate(["B", "B", "B", "A", "tie"])
    assert got.estimate == pytest.approx(0.7)
    assert got.n == 5
    assert got.low < 0.7 < got.high


def test_win_rate_hand_wilson_interval() -> None:
    # 2 wins of 4 at 95%: z = 1.959964, centre = 0.5, half = z / (1 + z^2/4) * sqrt(1/16 + z^2/64)
    z = 1.959963984540054
    half = z / (1 + z * z / 4) * math.sqrt(0.25 / 4 + z * z / 64)
    got = win_rate(["B", "A", "B", "A"])
    assert got.low == pytest.approx(0.5 - half)
    assert got.high == pytest.approx(0.5 + half)
    assert got.low == pytest.approx(0.15004, abs=1e-5)


@pytest.mark.parametrize(("wins", "losses"), [(7, 3), (0, 5), (5, 0), (12, 30), (1, 1)])
def test_win_rate_without_ties_matches_scipy_wilson(wins: int, losses: int) -> None:
    ci = scipy.stats.binomtest(wins, wins + losses).proportion_ci(0.95, method="wilson")
    got = win_rate(["B"] * wins + ["A"] * losses)
    assert got.estimate == pytest.approx(wins / (wins + losses))
    assert got.low == pytest.approx(ci.low)
    assert got.high == pytest.approx(ci.high)


def test_win_rate_only_ties_is_one_half_and_level_widens() -> None:
    ties = win_rate(["tie"] * 10)
    assert ties.estimate == 0.5
    assert win_rate(["tie"] * 10, level=0.99).low < ties.low


def test_win_rate_rejects_unknown_outcomes() -> None:
    with pytest.raises(AgreementError, match=r"unknown pairwise outcomes \['C', 'b'\]"):
        win_rate(["A", "b", "C"])


def test_sign_test_hand_values() -> None:
    # 9 wins, 1 loss: P(X <= 1) = 11/1024, two-sided 22/1024.
    assert sign_test(9, 1) == pytest.approx(22 / 1024, abs=1e-15)
    assert sign_test(1, 9) == pytest.approx(22 / 1024, abs=1e-15)
    assert sign_test(5, 5) == 1.0
    assert sign_test(0, 0) == 1.0
    assert sign_test(0, 6) == pytest.approx(2 / 64)


@pytest.mark.parametrize(("wins", "losses"), [(3, 11), (20, 8), (0, 1), (40, 41)])
def test_sign_test_agrees_with_exact_mcnemar(wins: int, losses: int) -> None:
    # A win is a fix (fail -> pass), a loss a regression; the same exact binomial test.
    base = [False] * wins + [True] * losses
    cand = [True] * wins + [False] * losses
    assert sign_test(wins, losses) == pytest.approx(mcnemar_exact(base, cand).p_value, abs=1e-12)


def test_sign_test_rejects_negative_counts() -> None:
    with pytest.raises(AgreementError, match="losses must be a non-negative integer"):
        sign_test(3, -1)
