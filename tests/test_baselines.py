"""Baseline projections (t-SNE, UMAP, MDS, DCM, PCA) and block-normalised distances."""

from __future__ import annotations

import numpy as np
import pytest

from modalchorus.metrics import intermodal_scores
from modalchorus.projection import (
    ProjectionResult,
    block_normalised_distances,
    cosine_distances,
    fit_project,
    list_methods,
)
from modalchorus.projection.baselines import landmark_sample, place_out_of_sample
from modalchorus.projection.distances import (
    block_pair_values,
    distance_blocks,
    fit_block_normaliser,
    l2_normalise,
)

N_IMAGE, N_TEXT, DIM = 150, 12, 32


def _clusters(gap: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """150 unit-norm images in 3 clusters and 12 texts near the cluster centres.

    Before normalising, images are pushed by ``+gap`` and texts by ``-gap`` along one common
    direction: a modality gap. At ``gap=1`` (as with CLIP) every cross-modal distance exceeds
    the median intra-modal one, while each image's nearest texts still come from its cluster.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    direction = rng.normal(size=DIM)
    direction /= np.linalg.norm(direction)
    labels = np.repeat(np.arange(3), N_IMAGE // 3)
    X_image = centres[labels] + 0.18 * rng.normal(size=(N_IMAGE, DIM)) + gap * direction
    text_labels = np.repeat(np.arange(3), N_TEXT // 3)
    X_text = centres[text_labels] + 0.1 * rng.normal(size=(N_TEXT, DIM)) - gap * direction
    unit = np.linalg.norm
    return X_image / unit(X_image, axis=1)[:, None], X_text / unit(X_text, axis=1)[:, None]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Mild modality gap: every baseline should keep cross-modal neighbourhoods."""
    return _clusters(gap=0.2)


@pytest.fixture(scope="module")
def gapped() -> tuple[np.ndarray, np.ndarray]:
    """Strong, CLIP-like modality gap."""
    return _clusters(gap=1.0)


@pytest.fixture(scope="module")
def random_map_inter_t(data: tuple[np.ndarray, np.ndarray]) -> float:
    X_image, X_text = data
    rng = np.random.default_rng(123)
    Y = rng.normal(size=(N_IMAGE + N_TEXT, 2))
    return intermodal_scores(X_image, X_text, Y[:N_IMAGE], Y[N_IMAGE:], 5)["inter_T"]


def test_list_methods() -> None:
    assert list_methods() == ["tsne", "umap", "mds", "dcm", "pca"]


@pytest.mark.parametrize("method", ["tsne", "umap", "mds", "dcm", "pca"])
def test_method_shapes_determinism_quality(
    method: str, data: tuple[np.ndarray, np.ndarray], random_map_inter_t: float
) -> None:
    X_image, X_text = data
    res = fit_project(method, X_image, X_text, random_state=0)
    assert isinstance(res, ProjectionResult)
    assert res.method == method
    assert res.Y_image.shape == (N_IMAGE, 2) and res.Y_text.shape == (N_TEXT, 2)
    assert np.isfinite(res.Y_image).all() and np.isfinite(res.Y_text).all()
    assert res.fit_seconds >= 0.0
    assert res.params["random_state"] == 0
    # Same seed, same layout.
    again = fit_project(method, X_image, X_text, random_state=0)
    np.testing.assert_array_equal(res.Y_image, again.Y_image)
    np.testing.assert_array_equal(res.Y_text, again.Y_text)
    # Clearly better than a random map at keeping each point's cross-modal neighbours.
    inter_t = intermodal_scores(X_image, X_text, res.Y_image, res.Y_text, 5)["inter_T"]
    assert random_map_inter_t < 0.6
    assert inter_t > random_map_inter_t + 0.2, (method, inter_t, random_map_inter_t)


def test_inputs_are_l2_normalised(data: tuple[np.ndarray, np.ndarray]) -> None:
    X_image, X_text = data
    scale = np.random.default_rng(1).uniform(0.5, 5.0, size=(N_IMAGE, 1))
    a = fit_project("pca", X_image, X_text)
    b = fit_project("pca", X_image * scale, X_text * 3.0)
    np.testing.assert_allclose(a.Y_image, b.Y_image, atol=1e-10)


def test_rows_too_large_to_square_are_normalised() -> None:
    """Squaring entries beyond ~1e154 overflows float64: such rows must not become zeros."""
    X = np.array([[3e200, 4e200], [3.0, -4.0], [1e-300, 0.0]])
    np.testing.assert_allclose(l2_normalise(X), [[0.6, 0.8], [0.6, -0.8], [1.0, 0.0]])


@pytest.mark.parametrize("method", ["mds", "dcm"])
def test_mds_landmarks_for_large_inputs(method: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    X_image, X_text = data
    res = fit_project(method, X_image, X_text, random_state=3, max_points=60)
    assert res.info["n_landmarks"] == 60
    assert res.Y_image.shape == (N_IMAGE, 2) and np.isfinite(res.Y_image).all()
    again = fit_project(method, X_image, X_text, random_state=3, max_points=60)
    np.testing.assert_array_equal(res.Y_image, again.Y_image)
    inter_t = intermodal_scores(X_image, X_text, res.Y_image, res.Y_text, 5)["inter_T"]
    assert inter_t > 0.7


def test_dcm_bridges_the_modality_gap(gapped: tuple[np.ndarray, np.ndarray]) -> None:
    # Raw-distance MDS keeps the gap (two islands); per-block normalisation removes it.
    X_image, X_text = gapped
    mds = fit_project("mds", X_image, X_text)
    scores = {"mds": intermodal_scores(X_image, X_text, mds.Y_image, mds.Y_text, 5)["inter_T"]}
    for norm in ("minmax", "zscore", "quantile"):
        res = fit_project("dcm", X_image, X_text, normalisation=norm)
        assert res.params["normalisation"] == norm
        assert np.isfinite(res.Y_image).all() and np.isfinite(res.Y_text).all()
        scores[norm] = intermodal_scores(X_image, X_text, res.Y_image, res.Y_text, 5)["inter_T"]
        assert scores[norm] > scores["mds"] + 0.1, scores


def test_landmark_sample_is_stratified() -> None:
    rng = np.random.default_rng(0)
    idx = landmark_sample(10_000, 10, 2000, rng)
    assert idx.size == 2000 and np.unique(idx).size == 2000
    assert np.sum(idx >= 10_000) == 10  # every concept text is a landmark
    idx = landmark_sample(1000, 5000, 2000, rng)
    assert np.sum(idx < 1000) == 500  # at least max_points // 4 images
    np.testing.assert_array_equal(landmark_sample(30, 20, 100, rng), np.arange(50))


def test_place_out_of_sample_weighted_mean() -> None:
    Y_land = np.array([[0.0, 0.0], [4.0, 0.0], [100.0, 100.0]])
    D = np.array([[1.0, 3.0, 50.0]])
    # 2 nearest landmarks, weights 1 and 1/3: (0 * 1 + 4 / 3) / (4 / 3) = 1.
    np.testing.assert_allclose(place_out_of_sample(D, Y_land, 2), [[1.0, 0.0]])
    # A point on top of a landmark lands on it.
    np.testing.assert_allclose(
        place_out_of_sample(np.array([[0.0, 2.0, 9.0]]), Y_land, 3)[0], 0.0, atol=1e-9
    )


# ------------------------------------------------------------------ block normalisation


def _blocks(D: np.ndarray, n: int) -> dict[str, np.ndarray]:
    return {"II": D[:n, :n], "TT": D[n:, n:], "IT": D[:n, n:]}


def _off_diagonal(B: np.ndarray) -> np.ndarray:
    return B[~np.eye(B.shape[0], dtype=bool)] if B.shape[0] == B.shape[1] else B.ravel()


def test_minmax_blocks_span_unit_interval(gapped: tuple[np.ndarray, np.ndarray]) -> None:
    X_image, X_text = gapped
    D_II, D_TT, D_IT = distance_blocks(X_image, X_text)
    assert D_IT.min() > np.percentile(_off_diagonal(D_II), 50)  # the data has a modality gap
    D = block_normalised_distances(X_image, X_text, "minmax")
    assert D.shape == (N_IMAGE + N_TEXT,) * 2
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    for name, B in _blocks(D, N_IMAGE).items():
        values = _off_diagonal(B) if name != "IT" else B.ravel()
        assert values.min() == 0.0 and values.max() == 1.0, name


def test_zscore_blocks_share_mean_and_scale(gapped: tuple[np.ndarray, np.ndarray]) -> None:
    X_image, X_text = gapped
    D = block_normalised_distances(X_image, X_text, "zscore")
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    assert D.min() == 0.0
    stats = [
        (_off_diagonal(B).mean(), _off_diagonal(B).std()) for B in _blocks(D, N_IMAGE).values()
    ]
    means, stds = np.array(stats).T
    np.testing.assert_allclose(means, means[0], atol=1e-9)
    np.testing.assert_allclose(stds, 1.0, atol=1e-9)


def test_quantile_blocks_are_monotone_and_uniform(
    gapped: tuple[np.ndarray, np.ndarray],
) -> None:
    X_image, X_text = gapped
    raw = _blocks(
        np.block(
            [
                [cosine_distances(X_image), cosine_distances(X_image, X_text)],
                [cosine_distances(X_text, X_image), cosine_distances(X_text)],
            ]
        ),
        N_IMAGE,
    )
    D = block_normalised_distances(X_image, X_text, "quantile")
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(np.diag(D), 0.0)
    for name, B in _blocks(D, N_IMAGE).items():
        values, before = _off_diagonal(B), _off_diagonal(raw[name])
        assert values.min() >= 0.0 and values.max() <= 1.0
        assert abs(values.mean() - 0.5) < 0.02, name
        order = np.argsort(before, kind="stable")
        assert np.all(np.diff(values[order]) >= -1e-12), name  # order within a block kept


def test_normaliser_transforms_new_distances_consistently(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X_image, X_text = data
    D, norm = block_normalised_distances(X_image, X_text, "minmax", return_normaliser=True)
    D_IT = cosine_distances(X_image, X_text)
    np.testing.assert_allclose(norm.transform(D_IT, "IT"), D[:N_IMAGE, N_IMAGE:])
    np.testing.assert_allclose(norm.transform(D_IT.T, "TI"), D[N_IMAGE:, :N_IMAGE])
    values = block_pair_values(*distance_blocks(X_image, X_text))
    assert values["II"].size == N_IMAGE * (N_IMAGE - 1) // 2
    assert values["IT"].size == N_IMAGE * N_TEXT
    with pytest.raises(ValueError, match="unknown normalisation"):
        fit_block_normaliser(values, "rank")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown block"):
        norm.transform(D_IT, "XY")


# ---------------------------------------------------------------------------- errors


def test_unknown_method_lists_known(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"unknown projection method 'isomap'.*'tsne'.*'pca'"):
        fit_project("isomap", *data)


def test_unknown_and_reserved_params(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['perplexit'\]"):
        fit_project("tsne", *data, perplexit=5)
    with pytest.raises(ValueError, match="n_components"):
        fit_project("pca", *data, n_components=3)
    for method in ("mds", "dcm"):  # they pass precomputed distances themselves
        with pytest.raises(ValueError, match=r"\['metric'\] are set by fit_project"):
            fit_project(method, *data, metric="euclidean")
    with pytest.raises(ValueError, match="n_neighbors_oos must be >= 1"):
        fit_project("mds", *data, max_points=20, n_neighbors_oos=0)
    with pytest.raises(ValueError, match="random_state must be None or an integer"):
        fit_project("pca", *data, random_state="a")


def test_invalid_inputs(data: tuple[np.ndarray, np.ndarray]) -> None:
    X_image, X_text = data
    with pytest.raises(ValueError, match=r"X_image has d=32, X_text has d=31"):
        fit_project("pca", X_image, X_text[:, :31])
    bad = X_image.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"X_image contains NaN or inf in 1 of 150 rows"):
        fit_project("mds", bad, X_text)
    zero = X_text.copy()
    zero[2] = 0.0
    with pytest.raises(ValueError, match="X_text has 1 all-zero rows"):
        fit_project("pca", X_image, zero)


def test_values_beyond_the_working_precision_are_named(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """fit_project works in float64: 1e39 is fine there (rows are L2-normalised), and a
    long double beyond float64's range is named as such, not as NaN or inf."""
    X_image, X_text = data
    big = X_image.copy()
    big[4] *= 1e39  # same direction, beyond float32's range
    np.testing.assert_allclose(
        fit_project("pca", big, X_text).Y_text, fit_project("pca", X_image, X_text).Y_text
    )
    if np.finfo(np.longdouble).max <= np.finfo(np.float64).max:
        pytest.skip("long double is float64 on this platform")
    huge = X_text.astype(np.longdouble)
    huge[3, 1] = np.longdouble("1e400")
    with pytest.raises(ValueError) as err:
        fit_project("pca", X_image, huge)
    message = str(err.value)
    assert "NaN or inf" not in message
    assert message.startswith("X_text has values that exceed float64's range (max ~1.8e+308)")
    assert "in 1 of 12 rows (first at row 3)" in message
