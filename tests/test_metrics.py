"""Neighbourhood metrics: analytic cases, scikit-learn parity, chunking, errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sk_trustworthiness

from modalchorus.metrics import (
    continuity,
    cross_modal_agreement,
    intermodal_continuity,
    intermodal_scores,
    intermodal_trustworthiness,
    metric_sample,
    projection_report,
    trustworthiness,
)
from modalchorus.metrics import neighbourhood as nb
from modalchorus.projection.validation import as_matrix, check_enough_points


def _circle(n: int, rng: np.random.Generator) -> np.ndarray:
    """Points on the unit circle: cosine order equals Euclidean (chord) order."""
    theta = rng.uniform(0.0, 2.0 * np.pi, size=n)
    return np.column_stack([np.cos(theta), np.sin(theta)])


def _similarity(Y: np.ndarray) -> np.ndarray:
    """Rotate by 37 degrees, scale by 3.5, translate."""
    a = np.deg2rad(37.0)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return 3.5 * Y @ R.T + np.array([10.0, -4.0])


def _clusters(n: int, d: int, rng: np.random.Generator, n_clusters: int = 4) -> np.ndarray:
    centres = rng.normal(size=(n_clusters, d))
    return centres[rng.integers(n_clusters, size=n)] + 0.3 * rng.normal(size=(n, d))


# ------------------------------------------------------------------ scikit-learn parity


@pytest.mark.parametrize("k", [1, 3, 7, 19])
def test_equals_sklearn_for_euclidean(k: int) -> None:
    rng = np.random.default_rng(k)
    X = rng.normal(size=(60, 5))
    Y = X[:, :2] + 0.5 * rng.normal(size=(60, 2))
    expected_t = sk_trustworthiness(X, Y, n_neighbors=k)
    expected_c = sk_trustworthiness(Y, X, n_neighbors=k)  # continuity = T with roles swapped
    assert trustworthiness(X, Y, k, "euclidean") == pytest.approx(expected_t, abs=1e-9)
    assert continuity(X, Y, k, "euclidean") == pytest.approx(expected_c, abs=1e-9)
    assert expected_t < 0.99  # the case is not trivial


def test_cosine_equals_sklearn_cosine() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 8))
    Y = rng.normal(size=(50, 2))
    expected = sk_trustworthiness(X, Y, n_neighbors=5, metric="cosine")
    assert trustworthiness(X, Y, 5) == pytest.approx(expected, abs=1e-9)


# --------------------------------------------------------------------- analytic cases


def test_identity_map_is_perfect() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 2))
    XB = rng.normal(size=(40, 2))
    for k in (1, 5, 10):
        assert trustworthiness(X, X, k, "euclidean") == 1.0
        assert continuity(X, X, k, "euclidean") == 1.0
        scores = intermodal_scores(X, XB, X, XB, k, "euclidean")
        assert all(v == 1.0 for v in scores.values()), scores


def test_identity_on_circle_is_perfect_with_cosine() -> None:
    rng = np.random.default_rng(3)
    XA, XB = _circle(70, rng), _circle(30, rng)
    assert trustworthiness(XA, XA, 7) == 1.0
    assert continuity(XA, XA, 7) == 1.0
    assert intermodal_scores(XA, XB, XA, XB, 5)["inter_T"] == 1.0
    assert intermodal_scores(XA, XB, XA, XB, 5)["inter_C"] == 1.0


def test_similarity_transform_is_perfect() -> None:
    rng = np.random.default_rng(4)
    XA, XB = _circle(90, rng), _circle(25, rng)
    YA, YB = _similarity(XA), _similarity(XB)
    assert trustworthiness(XA, YA, 10) == pytest.approx(1.0, abs=1e-12)
    assert continuity(XA, YA, 10) == pytest.approx(1.0, abs=1e-12)
    scores = intermodal_scores(XA, XB, YA, YB, 5)
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in scores.values()), scores
    # Cosine ignores the norm of high-D points: rescaling rows changes nothing.
    scale = rng.uniform(0.1, 10.0, size=(90, 1))
    assert trustworthiness(XA * scale, YA, 10) == pytest.approx(1.0, abs=1e-12)


def test_ties_in_both_spaces_are_not_penalised() -> None:
    # A grid has many equidistant neighbours, tied in both spaces: the identity stays at 1.
    g = np.arange(6.0)
    X = np.array([(a, b) for a in g for b in g])
    assert trustworthiness(X, X, 4, "euclidean") == 1.0
    assert continuity(X, X, 4, "euclidean") == 1.0


def test_a_collapsed_layout_scores_like_a_random_one() -> None:
    # Every point at one spot: the layout cannot tell any neighbours apart.
    rng = np.random.default_rng(3)
    XA, XB = _clusters(120, 16, rng), _clusters(60, 16, rng)
    ZA, ZB = np.zeros((120, 2)), np.zeros((60, 2))
    assert continuity(XA, ZA, 10) == pytest.approx(0.5, abs=0.1)
    assert trustworthiness(XA, ZA, 10) == pytest.approx(0.5, abs=0.1)
    scores = intermodal_scores(XA, XB, ZA, ZB, 5)
    assert scores["inter_C"] == pytest.approx(0.5, abs=0.1)
    assert scores["inter_T"] == pytest.approx(0.5, abs=0.1)


def test_random_map_is_clearly_worse() -> None:
    rng = np.random.default_rng(5)
    XA, XB = _clusters(200, 16, rng), _clusters(60, 16, rng)
    YA, YB = rng.normal(size=(200, 2)), rng.normal(size=(60, 2))
    assert trustworthiness(XA, YA, 10) < 0.8
    assert continuity(XA, YA, 10) < 0.8
    scores = intermodal_scores(XA, XB, YA, YB, 5)
    assert scores["inter_T"] < 0.8
    assert scores["inter_C"] < 0.8


def test_hand_computed_five_points() -> None:
    # High-D (1-D line, Euclidean): x = 0, 1, 3, 7, 12.  Layout: y = 0, 7, 3, 1, 12
    # (points 1 and 3 swapped).  k = 2, n = 5: normaliser 2 / (n k (2n - 3k - 1)) = 2/30.
    #
    # high-D ranks r(i, j)            layout 2-NN      T: sum max(r - 2, 0) over layout 2-NN
    #   0: 1->1 2->2 3->3 4->4        {3, 2}           r(0,3)=3 -> 1
    #   1: 0->1 2->2 3->3 4->4        {2, 4}           r(1,4)=4 -> 2
    #   2: 1->1 0->2 3->3 4->4        {3, 0}           r(2,3)=3 -> 1
    #   3: 2->1 4->2 1->3 0->4        {0, 2}           r(3,0)=4 -> 2
    #   4: 3->1 2->2 1->3 0->4        {1, 2}           r(4,1)=3 -> 1      total 7
    #
    # layout ranks                    high-D 2-NN      C: sum max(r - 2, 0) over high-D 2-NN
    #   0: 3->1 2->2 1->3 4->4        {1, 2}           1
    #   1: 2->1 4->2 3->3 0->4        {0, 2}           2
    #   2: 3->1 0->2 1->3 4->4        {1, 0}           1
    #   3: 0->1 2->2 1->3 4->4        {2, 4}           2
    #   4: 1->1 2->2 3->3 0->4        {3, 2}           1                  total 7
    #
    # T = C = 1 - 7 * 2/30 = 8/15.
    x = np.array([[0.0], [1.0], [3.0], [7.0], [12.0]])
    y = np.array([[0.0], [7.0], [3.0], [1.0], [12.0]])
    expected = float(Fraction(8, 15))
    assert trustworthiness(x, y, 2, "euclidean") == pytest.approx(expected, abs=1e-15)
    assert continuity(x, y, 2, "euclidean") == pytest.approx(expected, abs=1e-15)
    assert sk_trustworthiness(x, y, n_neighbors=2) == pytest.approx(expected, abs=1e-15)


def test_hand_computed_intermodal() -> None:
    # B (5 points) at 0, 2, 5, 9, 14 in both spaces.  A (2 points): high-D 1.2, 8.2;
    # layout 4.9, 13.  k = 1, n = |A| = 2, m = |B| = 5: normaliser 2 / (2 * 1 * 6) = 1/6.
    #   a0 high-D order over B: b1(.8) b0(1.2) b2(3.8) b3(7.8) b4(12.8)
    #   a0 layout order:        b2(.1) b1(2.9) b3(4.1) b0(4.9) b4(9.1)
    #   a1 high-D order:        b3(.8) b2(3.2) b4(5.8) b1(6.2) b0(8.2)
    #   a1 layout order:        b4(1)  b3(4)   b2(8)   b1(11)  b0(13)
    # T: layout NN a0->b2 has high-D rank 3 (+2); a1->b4 rank 3 (+2): 4 -> T = 1 - 4/6 = 1/3.
    # C: high-D NN a0->b1 has layout rank 2 (+1); a1->b3 rank 2 (+1): 2 -> C = 1 - 2/6 = 2/3.
    XB = np.array([[0.0], [2.0], [5.0], [9.0], [14.0]])
    XA, YA = np.array([[1.2], [8.2]]), np.array([[4.9], [13.0]])
    t = intermodal_trustworthiness(XA, XB, YA, XB, 1, "euclidean")
    c = intermodal_continuity(XA, XB, YA, XB, 1, "euclidean")
    assert t == pytest.approx(float(Fraction(1, 3)), abs=1e-15)
    assert c == pytest.approx(float(Fraction(2, 3)), abs=1e-15)


def test_intermodal_scores_averages_directions() -> None:
    rng = np.random.default_rng(6)
    XI, XT = rng.normal(size=(40, 6)), rng.normal(size=(25, 6))
    YI, YT = rng.normal(size=(40, 2)), rng.normal(size=(25, 2))
    s = intermodal_scores(XI, XT, YI, YT, 4)
    assert s["inter_T_image_to_text"] == intermodal_trustworthiness(XI, XT, YI, YT, 4)
    assert s["inter_T_text_to_image"] == intermodal_trustworthiness(XT, XI, YT, YI, 4)
    assert s["inter_C_image_to_text"] == intermodal_continuity(XI, XT, YI, YT, 4)
    assert s["inter_C_text_to_image"] == intermodal_continuity(XT, XI, YT, YI, 4)
    assert s["inter_T"] == pytest.approx(
        (s["inter_T_image_to_text"] + s["inter_T_text_to_image"]) / 2
    )
    assert s["inter_C"] == pytest.approx(
        (s["inter_C_image_to_text"] + s["inter_C_text_to_image"]) / 2
    )


# ------------------------------------------------------------------------- agreement


def test_cross_modal_agreement_constructed() -> None:
    # Concepts on the axes of R^3; image i is near concept labels[i] in high-D.
    rng = np.random.default_rng(7)
    concepts = np.eye(3)
    labels = np.repeat(np.arange(3), 10)
    X_img = concepts[labels] + 0.05 * rng.normal(size=(30, 3))
    Y_con = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    Y_img = Y_con[labels] + 0.1 * rng.normal(size=(30, 2))
    assert cross_modal_agreement(X_img, concepts, Y_img, Y_con) == 1.0
    # Move images 3 and 17 next to the wrong concept: 28 of 30 agree.
    Y_img[3] = Y_con[2] + 0.1
    Y_img[17] = Y_con[0] - 0.1
    assert cross_modal_agreement(X_img, concepts, Y_img, Y_con) == pytest.approx(28 / 30)


# -------------------------------------------------------------------------- chunking


def test_chunked_equals_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    XA, XB = _clusters(97, 10, rng), _clusters(41, 10, rng)
    YA, YB = rng.normal(size=(97, 2)), rng.normal(size=(41, 2))

    def everything(chunk_size: int) -> list[float]:
        out = [trustworthiness(XA, YA, 6, chunk_size=chunk_size)]
        out.append(continuity(XA, YA, 6, chunk_size=chunk_size))
        out.extend(intermodal_scores(XA, XB, YA, YB, 6, chunk_size=chunk_size).values())
        out.append(cross_modal_agreement(XA, XB, YA, YB, chunk_size=chunk_size))
        return out

    reference = everything(10**6)
    for chunk in (1, 7, 64):
        assert everything(chunk) == reference
    # The memory cap also splits blocks when chunk_size alone would not.
    monkeypatch.setattr(nb, "_MAX_BLOCK_ELEMENTS", 500)
    assert everything(10**6) == reference


def test_projection_report() -> None:
    rng = np.random.default_rng(9)
    XI, XT = _clusters(60, 8, rng), _clusters(12, 8, rng)
    YI, YT = rng.normal(size=(60, 2)), rng.normal(size=(12, 2))
    rep = projection_report(XI, XT, YI, YT, ks=(2, 5), concepts=[0, 3, 5])
    assert rep["n_image"] == 60 and rep["n_text"] == 12 and rep["ks"] == [2, 5]
    assert rep["T_image@2"] == trustworthiness(XI, YI, 2)
    assert rep["C_text@5"] == continuity(XT, YT, 5)
    assert rep["inter_T@5"] == intermodal_scores(XI, XT, YI, YT, 5)["inter_T"]
    expected = cross_modal_agreement(XI, XT[[0, 3, 5]], YI, YT[[0, 3, 5]])
    assert rep["agreement"] == expected and rep["n_concepts"] == 3
    assert projection_report(XI, XT, YI, YT, ks=(2,))["n_concepts"] == 12  # all texts
    mask = np.zeros(12, dtype=bool)
    mask[[0, 3, 5]] = True
    assert projection_report(XI, XT, YI, YT, ks=(2,), concepts=mask)["agreement"] == expected
    with pytest.raises(ValueError, match="integer indices or a bool mask"):
        projection_report(XI, XT, YI, YT, ks=(2,), concepts=[0.7, 1.9])
    assert rep["skipped"] == []
    # k = 5 is too large for 12 texts' intra-modal T? 2*12 - 15 - 1 = 8 > 0: fine; k = 8 is not.
    rep = projection_report(XI, XT, YI, YT, ks=(8,))
    assert rep["T_text@8"] is None and rep["inter_T@8"] is None
    assert rep["T_image@8"] is not None
    assert len(rep["skipped"]) == 2


def test_a_report_with_max_points_scores_a_fixed_sample() -> None:
    rng = np.random.default_rng(4)
    XI, XT = _clusters(300, 8, rng), _clusters(40, 8, rng)
    YI, YT = rng.normal(size=(300, 2)), rng.normal(size=(40, 2))
    concepts = [1, 7, 30]
    rep = projection_report(XI, XT, YI, YT, ks=(5,), concepts=concepts, max_points=100)
    assert (rep["n_image"], rep["n_text"]) == (300, 40)
    # The texts fit in half the budget, so they are all kept; the images get the rest.
    assert (rep["n_image_scored"], rep["n_text_scored"]) == (60, 40)
    rows, text_rows = metric_sample(300, 40, 100, concepts)
    assert np.array_equal(text_rows, np.arange(40)) and rows.size == 60
    exact = projection_report(XI[rows], XT, YI[rows], YT, ks=(5,), concepts=concepts)
    assert {k: v for k, v in rep.items() if k not in ("n_image", "n_text")} == {
        k: v for k, v in exact.items() if k not in ("n_image", "n_text")
    }
    again = projection_report(XI, XT, 2 * YI, 2 * YT, ks=(5,), concepts=concepts, max_points=100)
    assert again["inter_T@5"] == rep["inter_T@5"]  # same rows: a scaled layout scores the same
    whole = projection_report(XI, XT, YI, YT, ks=(5,), max_points=340)
    assert (whole["n_image_scored"], whole["n_text_scored"]) == (300, 40)


def test_metric_sample_keeps_concepts_first_and_splits_the_budget() -> None:
    images, texts = metric_sample(5_000, 50_000, 1_000, concepts=range(20))
    assert (images.size, texts.size) == (500, 500)
    assert set(range(20)) <= set(texts.tolist())
    assert np.array_equal(np.sort(texts), texts) and np.unique(texts).size == 500
    same = metric_sample(5_000, 50_000, 1_000, concepts=range(20))
    assert np.array_equal(same[0], images) and np.array_equal(same[1], texts)
    images, texts = metric_sample(50_000, 80, 1_000, concepts=range(80))
    assert (images.size, texts.size) == (920, 80)
    only_concepts = metric_sample(10, 5_000, 100, concepts=range(4_000))[1]
    assert only_concepts.size == 90 and only_concepts.max() < 4_000
    for bad in (3, 2.5, True):
        with pytest.raises(ValueError, match="max_points must be an integer >= 4"):
            metric_sample(10, 10, bad)
    mask = np.zeros(50_000, dtype=bool)
    mask[:20] = True  # a mask, as projection_report takes it, selects the same rows
    by_index = metric_sample(5_000, 50_000, 1_000, concepts=range(20))[1]
    assert np.array_equal(metric_sample(5_000, 50_000, 1_000, concepts=mask)[1], by_index)
    with pytest.raises(ValueError, match="concepts mask must have shape"):
        metric_sample(5_000, 50_000, 1_000, concepts=mask[:10])
    with pytest.raises(ValueError, match="out of range for 50000 texts"):
        metric_sample(5_000, 50_000, 1_000, concepts=[50_000])


# ---------------------------------------------------------------------------- errors


def test_error_mismatched_dims_names_both() -> None:
    with pytest.raises(ValueError, match=r"X_image has d=5, X_text has d=7"):
        intermodal_scores(np.ones((10, 5)), np.ones((10, 7)), np.ones((10, 2)), np.ones((10, 2)), 2)


def test_error_non_finite_counts_rows() -> None:
    X = np.random.default_rng(0).normal(size=(20, 4))
    X[4, 1] = np.nan
    X[9, 0] = np.inf
    X[9, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in 2 of 20 rows \(first at row 4\)"):
        trustworthiness(X, X[:, :2], 3)


def test_error_too_few_points() -> None:
    rng = np.random.default_rng(0)
    XI, XT = rng.normal(size=(30, 4)), rng.normal(size=(5, 4))
    YI, YT = rng.normal(size=(30, 2)), rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match="fewer XB points than k\\+1"):
        intermodal_trustworthiness(XI, XT, YI, YT, 5)
    with pytest.raises(ValueError, match="fewer text points than k\\+1: k=5 needs at least 6"):
        intermodal_scores(XI, XT, YI, YT, 5)
    with pytest.raises(ValueError, match="2m - 3k - 1 > 0"):
        intermodal_scores(XI, XT, YI, YT, 3)  # 2*5 - 9 - 1 = 0
    with pytest.raises(ValueError, match="fewer points than k\\+1"):
        trustworthiness(XT, YT, 5)
    with pytest.raises(ValueError, match="positive integer"):
        trustworthiness(XI, YI, 0)
    with pytest.raises(ValueError, match="fewer points than k\\+1"):
        check_enough_points(3, 3)


def test_error_shapes_and_zero_rows() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    with pytest.raises(ValueError, match="expected 20 rows, got 19"):
        trustworthiness(X, rng.normal(size=(19, 2)), 3)
    with pytest.raises(ValueError, match="2-D array"):
        trustworthiness(X[:, 0], rng.normal(size=(20, 2)), 3)
    with pytest.raises(ValueError, match="numeric"):
        as_matrix(np.array([["a", "b"]]))
    Z = X.copy()
    Z[6] = 0.0
    with pytest.raises(ValueError, match="1 all-zero rows \\(first at row 6\\)"):
        trustworthiness(Z, rng.normal(size=(20, 2)), 3)
    with pytest.raises(ValueError, match="unknown metric"):
        trustworthiness(X, rng.normal(size=(20, 2)), 3, metric_high="manhattan")  # type: ignore[arg-type]
