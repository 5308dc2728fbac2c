"""Agreement between raters: how far an LLM judge can be trusted against human labels.

Chance-corrected agreement (Cohen's kappa, weighted kappa for ordinal scales, Fleiss' kappa for
several raters) with a paired percentile bootstrap, confusion tables, precision and recall of a
judge's *fail* verdicts, the share of verdicts that flip between repeats, agreement per tag, and
the win rate and sign test of a pairwise (A/B) judge.

Edge cases are defined rather than NaN. Kappa is ``1 - observed / expected`` disagreement; the
expected disagreement is zero only when both raters put every item in one and the same category,
and then the observed disagreement is zero too, so such a sample is perfect agreement: kappa is
1.0 (sklearn returns NaN there). Empty or unpaired input raises :class:`AgreementError`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import binomtest, norm

from workbench.errors import AgreementError
from workbench.stats import Interval, consistency

__all__ = [
    "OUTCOMES",
    "AgreementError",
    "FailPrecisionRecall",
    "agreement_by_tag",
    "cohen_kappa",
    "confusion",
    "fail_precision_recall",
    "fleiss_kappa",
    "flip_share",
    "kappa_interval",
    "pairwise_kappas",
    "sign_test",
    "weighted_kappa",
    "win_rate",
]

Weights = Literal["linear", "quadratic"]

#: Pairwise verdicts, from the baseline's side (A) to the candidate's (B).
OUTCOMES: Final = ("A", "B", "tie")

# Cells (resamples x items) per bootstrap chunk: bounds memory at a few tens of MB.
_CHUNK_CELLS: Final = 1 << 22

_Ints = NDArray[np.int64]


@dataclass(frozen=True)
class FailPrecisionRecall:
    """Precision and recall of the judge's fail verdicts, with the human labels as truth.

    ``tp``: both fail; ``fp``: the judge fails a case the human passed; ``fn``: the judge
    passes a case the human failed; ``tn``: both pass. A rate is None when its denominator
    is zero (no judge fails for precision, no human fails for recall).
    """

    precision: float | None
    recall: float | None
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def n(self) -> int:
        """How many labelled cases the counts cover."""
        return self.tp + self.fp + self.fn + self.tn

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a plain dict, for tables and JSON."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "n": self.n,
        }


def cohen_kappa(
    a: Sequence[Hashable], b: Sequence[Hashable], *, labels: Sequence[Hashable] | None = None
) -> float:
    """Cohen's kappa of two raters' nominal labels on the same items (1.0 = perfect, 0 = chance).

    Args:
        labels: the allowed categories; a label outside them raises. By default the labels
            either rater used. Unused categories do not change kappa.
    """
    cats = _categories(a, b, labels)
    table = _table(a, b, cats)
    return float(_kappas(table[None], _nominal_weights(len(cats)))[0])


def weighted_kappa(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    categories: Sequence[Hashable],
    weights: Weights = "linear",
) -> float:
    """Weighted kappa for an ordinal scale: disagreements cost ``|i-j|`` or ``(i-j)**2``.

    Args:
        categories: the scale from lowest to highest; every label must be one of them.
        weights: ``"linear"`` or ``"quadratic"``. With two categories both equal Cohen's kappa.
    """
    cats = _declared(categories)
    table = _table(a, b, cats)
    return float(_kappas(table[None], _ordinal_weights(len(cats), weights))[0])


def kappa_interval(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    weighted: Weights | None = None,
    categories: Sequence[Hashable] | None = None,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Kappa with a percentile-bootstrap interval, resampling the (a, b) pairs together.

    Cohen's kappa when ``weighted`` is None (``categories`` optional, as ``labels`` of
    :func:`cohen_kappa`), else weighted kappa with that scheme (``categories`` required, in
    order). A resample in which both raters used a single category counts as kappa 1.0, as
    everywhere in this module. With fewer than two items the bounds are NaN, as in
    :func:`workbench.stats.paired_bootstrap`. The same inputs and seed give the same interval.
    """
    if not 0 < level < 1:
        raise AgreementError(f"level must be between 0 and 1 (exclusive), got {level!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise AgreementError(f"resamples must be a positive integer, got {resamples!r}")
    _check_pairs(a, b)
    if weighted is None:
        cats = _categories(a, b, categories)
        w = _nominal_weights(len(cats))
    else:
        if categories is None:
            raise AgreementError(
                f"weighted={weighted!r} needs categories: pass the scale from lowest to highest"
            )
        cats = _declared(categories)
        w = _ordinal_weights(len(cats), weighted)
    k = len(cats)
    codes = _codes(a, cats, "a") * k + _codes(b, cats, "b")
    n = int(codes.size)
    estimate = float(_kappas(_tables(codes[None], k), w)[0])
    if n < 2:
        return Interval(estimate, math.nan, math.nan, level, n)

    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // n)
    values = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        values[start:stop] = _kappas(_tables(codes[idx], k), w)
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(estimate, float(low), float(high), level, n)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float:
    """Fleiss' kappa of several raters: ``ratings`` is an items x raters matrix of labels.

    Every item needs the same number (at least two) of ratings; raters need not be the same
    people from item to item. When every rating is one category, kappa is 1.0.
    """
    if len(ratings) == 0:
        raise AgreementError("fleiss_kappa needs at least one item; got no ratings")
    m = len(ratings[0])
    for i, row in enumerate(ratings):
        if len(row) != m:
            raise AgreementError(
                f"every item needs the same number of ratings: item 0 has {m}, item {i} has "
                f"{len(row)}; drop or complete the unevenly rated items"
            )
    if m < 2:
        raise AgreementError(f"fleiss_kappa needs at least two ratings per item, got {m}")
    cats = _observed([label for row in ratings for label in row])
    if len(cats) == 1:
        return 1.0
    k = len(cats)
    codes = np.array([_codes(row, cats, "ratings") for row in ratings], dtype=np.int64)
    offsets = np.arange(len(ratings), dtype=np.int64)[:, None] * k
    counts = np.bincount((codes + offsets).ravel(), minlength=len(ratings) * k).reshape(-1, k)
    p_item = (np.sum(counts * counts, axis=1) - m) / (m * (m - 1))
    p_cat = counts.sum(axis=0) / counts.sum()
    observed = float(p_item.mean())
    expected = float(np.sum(p_cat * p_cat))
    return (observed - expected) / (1 - expected)


def pairwise_kappas(raters: Mapping[str, Sequence[Hashable]]) -> dict[tuple[str, str], float]:
    """Cohen's kappa of every pair of raters (in the mapping's order), each labelling all items."""
    if len(raters) < 2:
        raise AgreementError(
            f"pairwise_kappas needs at least two raters, got {len(raters)}: {sorted(raters)}"
        )
    labels = _observed([label for seq in raters.values() for label in seq])
    return {
        (x, y): cohen_kappa(raters[x], raters[y], labels=labels)
        for x, y in itertools.combinations(raters, 2)
    }


def confusion(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
    *,
    names: tuple[str, str] = ("human", "judge"),
) -> pd.DataFrame:
    """Counts of each (a, b) label pair: rows are rater ``a``'s labels, columns rater ``b``'s.

    Args:
        labels: row and column order (every label must be one of them); by default the labels
            either rater used.
        names: the names of the row and column axes.
    """
    cats = _categories(a, b, labels)
    table = _table(a, b, cats)
    return pd.DataFrame(
        table,
        index=pd.Index(list(cats), name=names[0]),
        columns=pd.Index(list(cats), name=names[1]),
    )


def fail_precision_recall(
    human_pass: Sequence[bool], judge_pass: Sequence[bool]
) -> FailPrecisionRecall:
    """How well the judge's fail verdicts find the cases people failed (fail is the positive)."""
    human = _bools(human_pass, "human_pass")
    judge = _bools(judge_pass, "judge_pass")
    _check_pairs(human, judge, allow_empty=True)
    tp = sum(not h and not j for h, j in zip(human, judge, strict=True))
    fp = sum(h and not j for h, j in zip(human, judge, strict=True))
    fn = sum(not h and j for h, j in zip(human, judge, strict=True))
    tn = len(human) - tp - fp - fn
    return FailPrecisionRecall(
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
    )


def flip_share(verdicts_by_item: Mapping[str, Sequence[Hashable]]) -> float | None:
    """Share of repeated items whose verdict is not the same on every repeat.

    Items with fewer than two verdicts are left out (NaN verdicts do not count); None when no
    item has two. An item flips when :func:`workbench.stats.consistency` is below 1.
    """
    flips = []
    for verdicts in verdicts_by_item.values():
        arr = np.asarray(list(verdicts))
        if arr.dtype.kind == "f":
            arr = arr[~np.isnan(arr)]
        if arr.size >= 2:
            flips.append(consistency(arr) < 1)
    return sum(flips) / len(flips) if flips else None


def agreement_by_tag(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    tags: Sequence[Sequence[str]],
    *,
    weighted: Weights | None = None,
    categories: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Per tag (an item may carry several): items ``n``, exact ``agreement`` and ``kappa``.

    One row per tag, sorted by tag, with columns ``tag``, ``n``, ``agreement``, ``kappa``.
    Kappa is Cohen's, or weighted kappa when ``weighted`` is given (then ``categories`` too).
    """
    _check_pairs(a, b)
    if len(tags) != len(a):
        raise AgreementError(
            f"tags must hold one list per item: got {len(tags)} for {len(a)} items"
        )
    if weighted is not None and categories is None:
        raise AgreementError(f"weighted={weighted!r} needs categories, lowest to highest")
    cats = _categories(a, b, categories) if weighted is None else _declared(categories or ())
    members: dict[str, list[int]] = {}
    for i, item_tags in enumerate(tags):
        for tag in dict.fromkeys(item_tags):  # a tag listed twice on one item counts once
            members.setdefault(tag, []).append(i)
    rows = []
    for tag in sorted(members):
        sub_a = [a[i] for i in members[tag]]
        sub_b = [b[i] for i in members[tag]]
        kappa = (
            cohen_kappa(sub_a, sub_b, labels=cats)
            if weighted is None
            else weighted_kappa(sub_a, sub_b, categories=cats, weights=weighted)
        )
        agree = sum(x == y for x, y in zip(sub_a, sub_b, strict=True)) / len(sub_a)
        rows.append({"tag": tag, "n": len(sub_a), "agreement": agree, "kappa": kappa})
    return pd.DataFrame(rows, columns=["tag", "n", "agreement", "kappa"])


def win_rate(outcomes: Sequence[str], *, level: float = 0.95) -> Interval:
    """Win rate of the candidate (B) over the baseline (A), a tie counting half, with a Wilson
    score interval.

    ``outcomes`` holds one of ``"A"``, ``"B"``, ``"tie"`` per case. The estimate is
    ``(wins + ties / 2) / n`` and the interval is the Wilson interval for that proportion over
    ``n`` cases; ties are less variable than a coin flip, so the interval is slightly
    conservative when there are many.
    """
    if not 0 < level < 1:
        raise AgreementError(f"level must be between 0 and 1 (exclusive), got {level!r}")
    bad = sorted({str(o) for o in outcomes if o not in OUTCOMES})
    if bad:
        raise AgreementError(f"unknown pairwise outcomes {bad}: use one of {list(OUTCOMES)}")
    n = len(outcomes)
    if n == 0:
        raise AgreementError("win_rate needs at least one outcome; got none")
    p = (outcomes.count("B") + outcomes.count("tie") / 2) / n
    z = float(norm.ppf(1 - (1 - level) / 2))
    shrink = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), level, n)


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test of wins against losses (ties left out); 1.0 with neither."""
    for name, value in (("wins", wins), ("losses", losses)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise AgreementError(f"{name} must be a non-negative integer, got {value!r}")
    if wins + losses == 0:
        return 1.0
    return float(binomtest(int(wins), int(wins + losses), 0.5).pvalue)


def _kappas(tables: _Ints, w: _Ints) -> NDArray[np.float64]:
    """Kappa of each (K x K) count table in ``tables`` under disagreement weights ``w``.

    ``1 - n * sum(w * observed) / sum(w * rows x cols)``, in integers up to the last division so
    that the zero-expected case is detected exactly (it forces zero observed: kappa 1.0).
    """
    n = tables.sum(axis=(1, 2))
    observed = np.einsum("rij,ij->r", tables, w)
    expected = np.einsum("ri,ij,rj->r", tables.sum(axis=2), w, tables.sum(axis=1))
    safe = np.where(expected == 0, 1, expected)
    return np.where(expected == 0, 1.0, 1.0 - (n * observed) / safe)


def _tables(codes: _Ints, k: int) -> _Ints:
    """Count tables (rows x K x K) from pair codes ``a * K + b``, one row of codes per table."""
    rows = codes.shape[0]
    offsets = np.arange(rows, dtype=np.int64)[:, None] * (k * k)
    flat = np.bincount((codes + offsets).ravel(), minlength=rows * k * k)
    return flat.reshape(rows, k, k).astype(np.int64)


def _table(a: Sequence[Hashable], b: Sequence[Hashable], cats: Sequence[Hashable]) -> _Ints:
    """The K x K count table of paired labels ``a`` (rows) and ``b`` (columns)."""
    _check_pairs(a, b)
    k = len(cats)
    codes = _codes(a, cats, "a") * k + _codes(b, cats, "b")
    return np.asarray(_tables(codes[None], k)[0], dtype=np.int64)


def _nominal_weights(k: int) -> _Ints:
    """Disagreement weights of Cohen's kappa: 0 on the diagonal, 1 elsewhere."""
    return 1 - np.eye(k, dtype=np.int64)


def _ordinal_weights(k: int, weights: str) -> _Ints:
    """Disagreement weights ``|i-j|`` or ``(i-j)**2``; kappa is invariant to their scale."""
    gap = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(np.int64)
    if weights == "linear":
        return gap
    if weights == "quadratic":
        return gap * gap
    raise AgreementError(f"unknown weights {weights!r}: use 'linear' or 'quadratic'")


def _check_pairs(a: Sequence[object], b: Sequence[object], *, allow_empty: bool = False) -> None:
    """Raise unless ``a`` and ``b`` label the same, non-empty, list of items."""
    if len(a) != len(b):
        raise AgreementError(
            f"the two raters must label the same items: got {len(a)} and {len(b)} labels; "
            "align them on the case id first"
        )
    if not allow_empty and len(a) == 0:
        raise AgreementError("agreement needs at least one labelled item; got none")


def _categories(
    a: Sequence[Hashable], b: Sequence[Hashable], labels: Sequence[Hashable] | None
) -> tuple[Hashable, ...]:
    """The declared ``labels`` or, by default, the labels either rater used."""
    _check_pairs(a, b)
    return _declared(labels) if labels is not None else _observed([*a, *b])


def _declared(labels: Sequence[Hashable]) -> tuple[Hashable, ...]:
    """Declared categories as a tuple; raise when empty or repeated."""
    cats = tuple(labels)
    if not cats:
        raise AgreementError("categories must not be empty")
    if len(set(cats)) != len(cats):
        raise AgreementError(f"categories must be distinct, got {list(cats)}")
    return cats


def _observed(values: Sequence[Hashable]) -> tuple[Hashable, ...]:
    """The distinct values, sorted when they can be, else in order of first appearance."""
    distinct = list(dict.fromkeys(values))
    try:
        return tuple(sorted(distinct))  # type: ignore[type-var]
    except TypeError:
        return tuple(distinct)


def _codes(values: Sequence[Hashable], cats: Sequence[Hashable], name: str) -> _Ints:
    """Each value's index in ``cats``; raise naming the first value that is not one of them."""
    index = {cat: i for i, cat in enumerate(cats)}
    try:
        return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
    except KeyError as exc:
        pos = next(i for i, v in enumerate(values) if v not in index)
        raise AgreementError(
            f"{name}[{pos}] = {values[pos]!r} is not one of the categories {list(cats)}"
        ) from exc


def _bools(values: Sequence[bool], name: str) -> list[bool]:
    """``values`` as a list of bools; pass/fail must be booleans or 0/1."""
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool | np.bool_) or (isinstance(v, int | np.integer) and v in (0, 1)):
            out.append(bool(v))
        else:
            raise AgreementError(f"{name}[{i}] = {v!r}: pass/fail must be a boolean (or 0/1)")
    return out
