"""Unit tests of the Modal Fusion Map estimator, its losses, sampling and evaluation."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from modalchorus.projection import losses
from modalchorus.projection.evaluate import compare_methods, format_table
from modalchorus.projection.mfm import (
    AUTO_FULL_POINTS,
    ModalFusionMap,
    NotFittedError,
    auto_schedule,
)
from modalchorus.projection.networks import MLPSpec, make_mlp
from modalchorus.projection.sampling import (
    BatchSampler,
    calibrate_bandwidths,
    knn_cosine,
    sample_block_pairs,
)

FAST = {"max_iter": 30, "refine_iter": 10, "eval_every": 10, "batch_size": 48, "init_steps": 5}


def gapped_clusters(
    n_image: int = 120, n_text: int = 90, d: int = 16, n_clusters: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors; images and texts share the clusters but sit in two cones."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d))
    gap = rng.normal(size=d)
    gap *= 1.5 / np.linalg.norm(gap)
    XI = centres[rng.integers(n_clusters, size=n_image)] + 0.4 * rng.normal(size=(n_image, d))
    XT = centres[rng.integers(n_clusters, size=n_text)] + 0.4 * rng.normal(size=(n_text, d))
    XI, XT = XI + gap, XT - gap
    return (
        (XI / np.linalg.norm(XI, axis=1, keepdims=True)).astype(np.float32),
        (XT / np.linalg.norm(XT, axis=1, keepdims=True)).astype(np.float32),
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return gapped_clusters()


@pytest.fixture(scope="module")
def fitted(data) -> ModalFusionMap:
    return ModalFusionMap(random_state=0, **FAST).fit(*data)


def rewrite_save(folder: Path, config: dict) -> None:
    """Rewrite a save with an edited config as a *consistent* pair of files (as a save
    by another version might be), so that load's checks of the values themselves run."""
    from safetensors.torch import load_file

    from modalchorus.projection.mfm import _encode_save

    for name, data in _encode_save(config, load_file(folder / "mfm.safetensors")).items():
        (folder / name).write_bytes(data)


# ------------------------------------------------------------------------- estimator


def test_fit_shapes_attributes_and_params(fitted, data):
    XI, XT = data
    assert fitted.embedding_image_.shape == (XI.shape[0], 2)
    assert fitted.embedding_text_.shape == (XT.shape[0], 2)
    assert np.isfinite(fitted.embedding_image_).all() and np.isfinite(fitted.embedding_text_).all()
    assert fitted.loss_history_ and {"step", "loss"} <= set(fitted.loss_history_[0])
    assert 1 <= fitted.best_step_ <= fitted.n_iter_ <= FAST["max_iter"]
    # "auto" stays "auto"; the resolved value is a fitted attribute.
    assert fitted.get_params()["perplexity"] == "auto"
    assert fitted.perplexity_ == pytest.approx(5.0)
    assert fitted.n_features_in_ == XI.shape[1]


def test_fit_returns_self_and_fit_transform(data):
    est = ModalFusionMap(random_state=3, **FAST)
    assert est.fit(*data) is est
    YI, YT = ModalFusionMap(random_state=3, **FAST).fit_transform(*data)
    np.testing.assert_array_equal(YI, est.embedding_image_)
    np.testing.assert_array_equal(YT, est.embedding_text_)


def test_determinism_under_random_state(fitted, data):
    again = ModalFusionMap(random_state=0, **FAST).fit(*data)
    np.testing.assert_array_equal(again.embedding_image_, fitted.embedding_image_)
    np.testing.assert_array_equal(again.embedding_text_, fitted.embedding_text_)
    other = ModalFusionMap(random_state=1, **FAST).fit(*data)
    assert not np.allclose(other.embedding_image_, fitted.embedding_image_)


def test_fit_does_not_touch_global_rng(data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ModalFusionMap(random_state=0, **FAST).fit(*data)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_transform_places_training_points_on_their_embedding(fitted, data):
    XI, XT = data
    np.testing.assert_allclose(fitted.transform(XI, "image"), fitted.embedding_image_, atol=1e-5)
    # Scale does not matter (rows are L2-normalised), chunking does not either.
    np.testing.assert_allclose(
        fitted.transform(3.0 * XT, "text"), fitted.embedding_text_, atol=1e-5
    )


def test_any_scale_works_since_rows_are_normalised(fitted, data):
    XI, XT = data
    placed = fitted.transform(XI, "image")
    for scale in (1e20, 1e-30):  # float32 norms of these rows over- or underflow
        np.testing.assert_allclose(fitted.transform(XI * scale, "image"), placed, atol=1e-5)
    tiny = ModalFusionMap(random_state=0, **FAST).fit(XI * np.float32(1e-25), XT)
    assert np.isfinite(tiny.embedding_image_).all()


def test_transform_chunking_is_invisible(fitted, data):
    XI, _ = data
    whole = fitted.transform(XI, "image")
    fitted.set_params(transform_chunk_size=7)
    try:
        np.testing.assert_allclose(fitted.transform(XI, "image"), whole, atol=1e-5)
    finally:
        fitted.set_params(transform_chunk_size=65_536)


def test_save_load_round_trip(fitted, data, tmp_path):
    XI, XT = data
    folder = fitted.save(tmp_path / "map")
    assert {p.name for p in folder.iterdir()} == {"mfm.safetensors", "mfm.json"}
    loaded = ModalFusionMap.load(folder)
    np.testing.assert_array_equal(loaded.transform(XI, "image"), fitted.transform(XI, "image"))
    np.testing.assert_array_equal(loaded.transform(XT, "text"), fitted.transform(XT, "text"))
    np.testing.assert_array_equal(loaded.embedding_image_, fitted.embedding_image_)
    assert loaded.get_params()["normalisation"] == fitted.normalisation
    assert loaded.loss_history_ == fitted.loss_history_
    for modality, rows in fitted.fit_indices_.items():
        np.testing.assert_array_equal(loaded.fit_indices_[modality], rows)


def test_a_save_without_fit_indices_still_loads(fitted, data, tmp_path):
    """Saves made before the fitted rows were kept (same format version) stay readable;
    they predate the digest of mfm.json too, so they load with a warning."""
    from safetensors.torch import load_file, save

    folder = fitted.save(tmp_path / "old")
    tensors = load_file(folder / "mfm.safetensors")
    weights = save({k: v for k, v in tensors.items() if not k.startswith("fit_indices.")})
    (folder / "mfm.safetensors").write_bytes(weights)
    config = json.loads((folder / "mfm.json").read_text())
    config["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    (folder / "mfm.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="without an integrity check"):
        loaded = ModalFusionMap.load(folder)
    assert not hasattr(loaded, "fit_indices_")
    np.testing.assert_array_equal(loaded.transform(data[0]), fitted.transform(data[0]))


def test_numpy_scalar_parameters_round_trip(data, tmp_path):
    XI, _ = data
    params = {**FAST, "max_iter": np.int64(FAST["max_iter"]), "learning_rate": np.float32(0.01)}
    fitted = ModalFusionMap(random_state=np.int64(0), **params).fit(*data)
    loaded = ModalFusionMap.load(fitted.save(tmp_path / "map"))
    np.testing.assert_array_equal(loaded.transform(XI, "image"), fitted.transform(XI, "image"))


def test_damaged_or_mixed_saves_are_refused_by_name(fitted, data, tmp_path):
    one = fitted.save(tmp_path / "one")
    other = ModalFusionMap(random_state=1, **FAST).fit(*data).save(tmp_path / "other")
    (one / "mfm.safetensors").write_bytes((other / "mfm.safetensors").read_bytes())
    with pytest.raises(ValueError, match="saved files do not match"):
        ModalFusionMap.load(one)
    config = json.loads((other / "mfm.json").read_text())
    del config["params"]
    rewrite_save(other, config)
    with pytest.raises(ValueError, match="damaged ModalFusionMap save.*params"):
        ModalFusionMap.load(other)
    with pytest.raises(ValueError, match="default network"):
        ModalFusionMap.load(fitted.save(tmp_path / "clean"), network=torch.nn.Linear(16, 2))
    (other / "mfm.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a saved ModalFusionMap"):
        ModalFusionMap.load(other)


def _edit_activation(config: dict) -> None:
    assert config["network_spec"]["activation"] == "relu"
    config["network_spec"]["activation"] = config["params"]["activation"] = "gelu"


def _edit_hidden(config: dict) -> None:
    config["params"]["hidden"] = [64, 64]


def _edit_normaliser(config: dict) -> None:
    config["normaliser"]["affine"]["IT"][0] *= 1.01


@pytest.mark.parametrize("edit", [_edit_activation, _edit_hidden, _edit_normaliser])
def test_an_edited_mfm_json_is_refused(fitted, data, tmp_path, edit):
    """A hand edit that still parses (the network's activation, the recorded hidden sizes,
    a normaliser constant) would silently give another map; the digest of mfm.json in the
    weights file refuses it."""
    folder = fitted.save(tmp_path / "map")
    config = json.loads((folder / "mfm.json").read_text())
    edit(config)
    (folder / "mfm.json").write_text(json.dumps(config, indent=2))
    with pytest.raises(ValueError, match=r"saved files do not match.*mfm\.json was edited"):
        ModalFusionMap.load(folder)


def test_an_mfm_json_from_another_save_is_refused(fitted, data, tmp_path):
    """Both directions of a mix-up: the JSON of one save with the weights of another."""
    one = fitted.save(tmp_path / "one")
    other = ModalFusionMap(random_state=1, **FAST).fit(*data).save(tmp_path / "other")
    (one / "mfm.json").write_bytes((other / "mfm.json").read_bytes())
    with pytest.raises(ValueError, match="saved files do not match"):
        ModalFusionMap.load(one)
    # Even with weights_sha256 made to fit, the weights still name another mfm.json.
    config = json.loads((other / "mfm.json").read_text())
    config["weights_sha256"] = hashlib.sha256((one / "mfm.safetensors").read_bytes()).hexdigest()
    (one / "mfm.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="saved files do not match"):
        ModalFusionMap.load(one)
    del config["weights_sha256"]  # dropping the weights digest is an edit too
    (one / "mfm.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="saved files do not match"):
        ModalFusionMap.load(one)


def test_an_untouched_or_reformatted_save_loads_without_warning(fitted, data, tmp_path):
    import warnings

    XI, XT = data
    folder = fitted.save(tmp_path / "map")
    config = json.loads((folder / "mfm.json").read_text())
    # The digest is of the canonical JSON: key order and whitespace do not matter.
    (folder / "mfm.json").write_text(json.dumps(dict(reversed(config.items())), indent=7))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = ModalFusionMap.load(folder)
    np.testing.assert_array_equal(loaded.transform(XI, "image"), fitted.transform(XI, "image"))
    np.testing.assert_array_equal(loaded.transform(XT, "text"), fitted.transform(XT, "text"))


def test_a_save_from_before_the_digest_loads_with_a_warning(fitted, data, tmp_path):
    """Old saves carry no digest of mfm.json: they load (edits go unseen) and say so."""
    from safetensors.torch import load_file, save

    folder = fitted.save(tmp_path / "old")
    weights = save(load_file(folder / "mfm.safetensors"))  # no metadata, as saves were
    (folder / "mfm.safetensors").write_bytes(weights)
    config = json.loads((folder / "mfm.json").read_text())
    config["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    (folder / "mfm.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="saved without an integrity check") as record:
        loaded = ModalFusionMap.load(folder)
    assert record[0].filename == __file__  # points at the caller of load
    np.testing.assert_array_equal(loaded.transform(data[0]), fitted.transform(data[0]))
    again = loaded.save(tmp_path / "again")  # saving again adds the digest
    config = json.loads((again / "mfm.json").read_text())
    config["network_spec"]["activation"] = "gelu"
    (again / "mfm.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="saved files do not match"):
        ModalFusionMap.load(again)


def test_a_workspace_model_loads_quietly_or_names_its_projection(
    fitted, data, tmp_path, small_manifest
):
    """A model stored in a workspace is loaded from a temporary folder: an old save loads
    without a warning about that folder, and a damaged one names the projection."""
    import warnings

    from layouts import stored_layout
    from safetensors.torch import load_file, save

    from modalchorus.projecting import load_projection_model
    from modalchorus.store import Workspace

    folder = fitted.save(tmp_path / "model")
    signed = (folder / "mfm.safetensors").read_bytes()
    weights = save(load_file(folder / "mfm.safetensors"))  # an old save: no digest of the JSON
    config = json.loads((folder / "mfm.json").read_text())
    digest = hashlib.sha256(weights).hexdigest()
    old = {
        "mfm.safetensors": weights,
        "mfm.json": json.dumps({**config, "weights_sha256": digest}).encode(),
    }
    config["network_spec"]["activation"] = "gelu"  # a signed save whose JSON was edited
    edited = {"mfm.safetensors": signed, "mfm.json": json.dumps(config).encode()}
    ws = Workspace.open(stored_layout(tmp_path / "ws", small_manifest))
    ids = ws.items()["id"]
    for name, files in (("mfm:old:e", old), ("mfm:edited:e", edited)):
        coords = np.zeros((len(ids), 2), np.float32)
        ws.put_projection(
            name, "pocket@t", ids, coords, method="mfm", params={}, metrics={}, model_files=files
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_projection_model(ws, "mfm:old:e")
    np.testing.assert_array_equal(model.transform(data[0]), fitted.transform(data[0]))
    with pytest.raises(ValueError, match=r"projection 'mfm:edited:e' has a damaged stored model"):
        load_projection_model(ws, "mfm:edited:e")


@pytest.mark.parametrize("normalisation", ["minmax", "quantile"])
def test_other_normalisations_fit_and_round_trip(data, tmp_path, normalisation):
    est = ModalFusionMap(normalisation=normalisation, random_state=0, **FAST).fit(*data)
    loaded = ModalFusionMap.load(est.save(tmp_path / normalisation))
    assert loaded.normaliser_.method == normalisation
    np.testing.assert_array_equal(loaded.transform(data[0]), est.transform(data[0]))


def test_triplet_form_fits(data):
    est = ModalFusionMap(nonmetric="triplet", random_state=0, **FAST).fit(*data)
    assert np.isfinite(est.embedding_text_).all()


@pytest.mark.parametrize("option", [{"anchor_sampling": "balanced"}, {"lr_schedule": "constant"}])
def test_training_options_change_the_fit(data, option):
    default = ModalFusionMap(random_state=0, **FAST).fit(*data)
    other = ModalFusionMap(random_state=0, **FAST, **option).fit(*data)
    assert np.isfinite(other.embedding_image_).all()
    assert not np.allclose(other.embedding_image_, default.embedding_image_)


class TinyNet(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_custom_network_is_accepted_and_saved(data, tmp_path):
    XI, XT = data
    torch.manual_seed(0)
    net = TinyNet(XI.shape[1])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    est = ModalFusionMap(network=net, random_state=0, **FAST).fit(XI, XT)
    assert isinstance(est.network_, TinyNet)
    for k, v in net.state_dict().items():  # the passed module is left untouched
        assert torch.equal(v, before[k])
    folder = est.save(tmp_path / "custom")
    with pytest.raises(ValueError, match="custom network"):
        ModalFusionMap.load(folder)
    loaded = ModalFusionMap.load(folder, network=TinyNet(XI.shape[1]))
    np.testing.assert_array_equal(loaded.transform(XI), est.transform(XI))


def test_custom_network_with_wrong_output_is_rejected(data):
    bad = nn.Linear(data[0].shape[1], 3)
    with pytest.raises(ValueError, match="network must map"):
        ModalFusionMap(network=bad, **FAST).fit(*data)


def test_callback_can_stop_training(data):
    calls = []

    def stop_after_first(step, loss, est):
        calls.append((step, loss))
        return True

    est = ModalFusionMap(callback=stop_after_first, random_state=0, **FAST).fit(*data)
    assert len(calls) == 1 and est.n_iter_ == FAST["eval_every"]
    assert est.refine_iter_ == 0  # a stop in the first phase skips the refinement
    assert math.isfinite(calls[0][1])


def test_refinement_phase_runs_after_training_and_round_trips(data, tmp_path):
    steps = []
    est = ModalFusionMap(
        random_state=0,
        callback=lambda step, loss, _: steps.append(step) and False,
        **{**FAST, "refine_iter": 20},
    ).fit(*data)
    assert est.n_iter_ == FAST["max_iter"] and est.refine_iter_ == 20
    refined = [h for h in est.loss_history_ if "refine_missed" in h]
    assert [h["step"] for h in refined] == [40, 50]  # after the 30 first-phase steps
    assert all(math.isfinite(h["loss"]) and h["refine_missed"] >= 0 for h in refined)
    assert steps == [10, 20, 30, 40, 50]
    plain = ModalFusionMap(random_state=0, **{**FAST, "refine_iter": 0}).fit(*data)
    assert plain.refine_iter_ == 0
    assert not np.allclose(est.embedding_image_, plain.embedding_image_)
    loaded = ModalFusionMap.load(est.save(tmp_path / "refined"))
    assert loaded.refine_iter_ == 20 and loaded.refine_iter == 20
    assert loaded.schedule_ == {"max_iter": FAST["max_iter"], "refine_iter": 20}
    np.testing.assert_allclose(loaded.transform(data[1], "text"), est.embedding_text_, atol=1e-5)


def test_auto_schedule_scales_the_step_budgets_down_for_small_inputs(data, tmp_path):
    assert auto_schedule(6_000) == auto_schedule(AUTO_FULL_POINTS) == (600, 250)
    assert auto_schedule(954) == (286, 119)
    assert auto_schedule(100) == (250, 80)
    est = ModalFusionMap(random_state=0, **{**FAST, "max_iter": "auto", "refine_iter": 0})
    est.fit(*data)
    assert est.get_params()["max_iter"] == "auto"
    assert est.schedule_ == {"max_iter": 250, "refine_iter": 0}
    assert est.n_iter_ <= 250 and est.refine_iter_ == 0
    assert ModalFusionMap.load(est.save(tmp_path / "auto")).schedule_ == est.schedule_
    with pytest.raises(ValueError, match="max_iter must be 'auto' or an integer >= 1, got 'fast'"):
        ModalFusionMap(max_iter="fast").fit(*data)


def test_callback_can_stop_refinement(data):
    est = ModalFusionMap(
        random_state=0, callback=lambda step, *_: step > 30, **{**FAST, "refine_iter": 40}
    ).fit(*data)
    assert est.refine_iter_ == 10


def test_early_stopping_keeps_best(data):
    est = ModalFusionMap(
        random_state=0,
        max_iter=400,
        refine_iter=0,
        eval_every=5,
        patience=1,
        tol=0.5,
        batch_size=32,
        init_steps=0,
    ).fit(*data)
    assert est.n_iter_ < 400
    losses_ = [h["loss"] for h in est.loss_history_]
    assert est.best_step_ == est.loss_history_[int(np.argmin(losses_))]["step"]


def test_large_input_is_fitted_on_a_sample():
    rng = np.random.default_rng(0)
    XI = rng.normal(size=(20_000, 8)).astype(np.float32) + 2.0
    XT = rng.normal(size=(10_000, 8)).astype(np.float32) - 2.0
    est = ModalFusionMap(max_fit_points=1_000, random_state=0, **FAST).fit(XI, XT)
    sizes = {m: idx.size for m, idx in est.fit_indices_.items()}
    assert sum(sizes.values()) == 1_000 and min(sizes.values()) >= 250
    assert est.embedding_image_.shape == (20_000, 2)
    assert est.embedding_text_.shape == (10_000, 2)


# ----------------------------------------------------------------------------- errors


def test_mismatched_dimensions(data):
    XI, XT = data
    with pytest.raises(ValueError, match="same number of columns"):
        ModalFusionMap(**FAST).fit(XI, XT[:, :-1])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_rows(data, bad):
    XI, XT = data
    XI = XI.copy()
    XI[7, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        ModalFusionMap(**FAST).fit(XI, XT)


@pytest.mark.parametrize("modality", ["X_image", "X_text"])
def test_values_beyond_float32_are_named_in_fit(data, modality):
    """Finite float64 values above float32's max are not "NaN or inf": say what they are."""
    XI, XT = (X.astype(np.float64) for X in data)
    target = XI if modality == "X_image" else XT
    target[5, 2] = 1e39
    target[9, 0] = -1e39
    with pytest.raises(ValueError) as err:
        ModalFusionMap(**FAST).fit(XI, XT)
    message = str(err.value)
    assert "NaN or inf" not in message
    assert message.startswith(f"{modality} has values that exceed float32's range (max ~3.4e+38)")
    assert "in 2 of" in message and "(first at row 5)" in message


def test_nan_is_named_before_values_beyond_float32(data):
    XI, XT = (X.astype(np.float64) for X in data)
    XI[3, 0], XI[6, 1] = 1e39, np.nan
    with pytest.raises(
        ValueError, match=r"X_image contains NaN or inf in 1 of \d+ rows \(first at row 6\)"
    ):
        ModalFusionMap(**FAST).fit(XI, XT)


def test_values_beyond_float32_are_named_in_transform(fitted, data):
    XI = data[0].astype(np.float64)
    XI[70, 1] = 1e39
    for chunk in (65_536, 32):  # the row is named in any chunk, not only the first
        est = copy.deepcopy(fitted).set_params(transform_chunk_size=chunk)
        with pytest.raises(ValueError) as err:
            est.transform(XI, "text")
        message = str(err.value)
        assert "NaN or inf" not in message
        assert message.startswith("X has values that exceed float32's range (max ~3.4e+38)")
        assert "at row 70" in message
    XI[70, 1] = 1e38  # within range: its norm overflows float32 but the row is rescaled
    assert np.isfinite(fitted.transform(XI)).all()


FIT_ONLY = {"max_iter": 1, "refine_iter": 0, "eval_every": 1, "batch_size": 8, "init_steps": 0}


def _outcome(call):
    """``("ok", result)`` or ``("error", message with the input's name left out)``."""
    try:
        return "ok", call()
    except ValueError as exc:
        return "error", str(exc).replace("X_image", "X").replace("X_text", "X")


@pytest.mark.parametrize(
    "dtype",
    [bool, np.int8, np.int64, np.uint16, np.float16, np.float64, object, np.complex64, str],
)
def test_fit_and_transform_accept_the_same_dtypes(fitted, data, dtype):
    """Whatever fit does with a dtype (cast it, or refuse it with a message), transform
    does too; bool counts as numeric (0/1), as in scikit-learn's check_array."""
    XI, XT = data
    if dtype is bool:
        XI, XT = XI > 0, XT > 0
    elif np.issubdtype(np.dtype(dtype), np.integer):
        XI, XT = np.rint(XI * 5), np.rint(XT * 5)
    XI, XT = XI.astype(dtype), XT.astype(dtype)
    if dtype is bool:
        XI[:, 0], XT[:, 0] = True, True  # no all-zero rows (cosine is undefined there)
    fit = _outcome(lambda: ModalFusionMap(random_state=0, **FIT_ONLY).fit(XI, XT))
    placed = _outcome(lambda: fitted.transform(XI, "image"))
    assert fit[0] == placed[0], (fit, placed)
    if fit[0] == "error":
        assert fit[1] == placed[1]
        assert f"got dtype {XI.dtype}" in fit[1]
    else:
        expected = fitted.transform(np.asarray(XI, dtype=np.float32), "image")
        np.testing.assert_array_equal(placed[1], expected)
        accepted = (bool, np.int8, np.int64, np.uint16, np.float16, np.float64)
        assert dtype in accepted


def test_bool_embeddings_are_cast_like_numbers(fitted, data):
    XI = data[0] > 0
    np.testing.assert_array_equal(fitted.transform(XI), fitted.transform(XI.astype(np.float32)))


def test_zero_rows(data):
    XI, XT = data
    XT = XT.copy()
    XT[3] = 0
    with pytest.raises(ValueError, match="all-zero"):
        ModalFusionMap(**FAST).fit(XI, XT)


def test_too_few_points(data):
    XI, XT = data
    with pytest.raises(ValueError, match=r"X_text has 10 points: n_neighbors=15 needs at least 16"):
        ModalFusionMap(**FAST).fit(XI, XT[:10])


def test_scikit_learn_sees_whether_it_is_fitted(fitted):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError as SklearnNotFitted
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(fitted)
    with pytest.raises(SklearnNotFitted):
        check_is_fitted(clone(fitted))


def test_not_fitted():
    est = ModalFusionMap()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.transform(np.ones((2, 4)))
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    with pytest.raises(NotFittedError):
        est.save("/nonexistent/never-written")


def test_transform_errors(fitted, data):
    XI, _ = data
    with pytest.raises(ValueError, match="unknown modality 'audio'"):
        fitted.transform(XI, "audio")
    with pytest.raises(ValueError, match="features"):
        fitted.transform(XI[:, :5], "image")
    bad = XI.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf at row 4"):
        fitted.transform(bad)
    with pytest.raises(ValueError, match="2-D"):
        fitted.transform(XI[0])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"normalisation": "l2"}, "unknown normalisation"),
        ({"nonmetric": "pairwise"}, "unknown nonmetric"),
        ({"anchor_sampling": "random"}, "unknown anchor_sampling"),
        ({"lr_schedule": "cosine"}, "unknown lr_schedule"),
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"perplexity": 50}, "perplexity"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"network": "mlp"}, "torch.nn.Module"),
        ({"init": "spectral"}, "unknown init"),
        ({"refine_iter": -1}, "refine_iter"),
        ({"refine_learning_rate": 0.0}, "refine_learning_rate"),
        ({"refine_trust_weight": float("nan")}, "refine_trust_weight"),
        ({"refine_intra_trust_weight": -0.1}, "refine_intra_trust_weight"),
        ({"hidden": 32}, "hidden must be a sequence"),
        ({"device": "cuda"}, "CUDA is not available"),
        ({"batch_size": 100_000}, "batch_size must be at most 4096"),
        ({"random_state": "a"}, "random_state must be None or an integer"),
        ({"random_state": -1}, "random_state must be None or an integer"),
    ],
)
def test_invalid_parameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        ModalFusionMap(**params).fit(*data)


def test_a_failed_refit_leaves_the_map_unfitted(data):
    """Not half-updated: a refit that fails after its first checks keeps neither the new
    feature count nor the old network."""
    XI, XT = data
    est = ModalFusionMap(random_state=0, **FAST).fit(XI, XT)
    with pytest.raises(ValueError, match="max_fit_points=10 leaves too few"):
        est.set_params(max_fit_points=10).fit(XI[:50, :8], XT[:40, :8])
    with pytest.raises(NotFittedError):
        est.transform(XI)
    assert not [name for name in vars(est) if name.endswith("_")]


def test_parameters_changed_after_the_fit_do_not_break_transform(fitted, data, tmp_path):
    XI, _ = data
    expected = fitted.transform(XI)
    est = copy.deepcopy(fitted).set_params(n_components=3)  # the fitted net still gives 2
    np.testing.assert_allclose(est.transform(XI), expected)
    with pytest.raises(ValueError, match="transform_chunk_size"):
        copy.deepcopy(fitted).set_params(transform_chunk_size=0).transform(XI)
    folder = fitted.save(tmp_path / "edited")
    config = json.loads((folder / "mfm.json").read_text())
    config["params"]["n_threads"] = 0
    rewrite_save(folder, config)  # consistent files: the values themselves are checked
    with pytest.raises(ValueError, match="n_threads"):
        ModalFusionMap.load(folder)
    config["params"]["n_threads"] = 1
    config["fitted"]["input_scale"] = float("nan")
    rewrite_save(folder, config)
    with pytest.raises(ValueError, match="damaged save: input_scale"):
        ModalFusionMap.load(folder)


def test_set_params_rejects_unknown():
    with pytest.raises(ValueError, match="unknown parameter"):
        ModalFusionMap().set_params(lambda_=1.0)


# ----------------------------------------------------------------------------- losses


def test_pearson_loss_is_scale_free_and_masked():
    g = torch.Generator().manual_seed(0)
    d = torch.rand(50, generator=g)
    assert losses.pearson_loss(d, 3.0 * d + 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.pearson_loss(d, -d).item() == pytest.approx(2.0, abs=1e-6)
    A, B = torch.rand(6, 6, generator=g), torch.rand(6, 6, generator=g)
    mask = ~torch.eye(6, dtype=torch.bool)
    masked = losses.pearson_loss(A, B, mask.float())
    assert masked.item() == pytest.approx(losses.pearson_loss(A[mask], B[mask]).item(), abs=1e-6)


def test_listwise_kl_is_zero_at_its_optimum_and_positive_elsewhere():
    g = torch.Generator().manual_seed(0)
    D_low_sq = torch.rand(4, 7, generator=g) * 4
    q = torch.softmax(-torch.log1p(D_low_sq), dim=1)
    assert losses.listwise_kl_loss(q, D_low_sq).item() == pytest.approx(0.0, abs=1e-6)
    p = losses.row_targets(torch.rand(4, 7, generator=g), 0.1)
    assert torch.allclose(p.sum(1), torch.ones(4))
    assert losses.listwise_kl_loss(p, D_low_sq).item() > 0


def test_listwise_reverse_term_adds_kl_of_layout_to_targets():
    g = torch.Generator().manual_seed(1)
    D_low_sq = torch.rand(3, 5, generator=g) * 4
    p = losses.row_targets(torch.rand(3, 5, generator=g), 0.2)
    q = torch.softmax(-torch.log1p(D_low_sq), dim=1)  # the Cauchy layout distribution
    by_hand = (q * (q.log() - p.log())).sum(1).mean()
    forward = losses.listwise_kl_loss(p, D_low_sq)
    both = losses.listwise_kl_loss(p, D_low_sq, reverse=0.5)
    assert (both - forward).item() == pytest.approx(0.5 * by_hand.item(), rel=1e-5)
    # At the optimum q = p both directions vanish.
    assert losses.listwise_kl_loss(q, D_low_sq, reverse=0.5).item() == pytest.approx(0, abs=1e-6)


def test_row_targets_mask_and_rank_order():
    D = torch.tensor([[0.1, 0.5, 0.3, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    p = losses.row_targets(D, torch.tensor([0.1]), mask)
    assert p[0, 3] == 0 and p[0, 0] > p[0, 2] > p[0, 1]


def test_triplet_hinge_zero_for_a_perfectly_ordered_layout():
    g = torch.Generator().manual_seed(0)
    D = torch.rand(8, 30, generator=g)
    assert losses.triplet_hinge_loss(D, 100 * D, 200, g, margin=0.0).item() == 0.0
    assert losses.triplet_hinge_loss(D, 1.0 - D, 200, g).item() > 0.0


def test_pairwise_distances():
    A = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    D = losses.pairwise_distances(A)
    assert D[0, 1].item() == pytest.approx(5.0)
    assert losses.pairwise_distances(A, squared=True)[0, 1].item() == pytest.approx(25.0)


# ---------------------------------------------------------------------------- sampling


def test_knn_cosine_matches_brute_force(data):
    XI, XT = data
    idx, dist = knn_cosine(XI, XT, 5)
    brute = np.argsort(1.0 - XI @ XT.T, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(idx, brute)
    assert (np.diff(dist, axis=1) >= 0).all()
    self_idx, _ = knn_cosine(XI, XI, 3, exclude_self=True)
    assert not (self_idx == np.arange(XI.shape[0])[:, None]).any()


def test_calibrated_bandwidths_hit_the_perplexity():
    rng = np.random.default_rng(0)
    d = np.sort(rng.random((20, 15)), axis=1)
    sigma = calibrate_bandwidths(d, 5.0)
    p = np.exp(-(d - d[:, :1]) / sigma[:, None])
    p /= p.sum(1, keepdims=True)
    perplexity = np.exp(-(p * np.log(p)).sum(1))
    np.testing.assert_allclose(perplexity, 5.0, rtol=1e-3)


def test_block_pairs_exact_when_small_and_sampled_when_large(data):
    XI, XT = data
    rng = np.random.default_rng(0)
    full = sample_block_pairs(XI[:10], XT[:8], 10_000, rng)
    assert full["II"].size == 45 and full["TT"].size == 28 and full["IT"].size == 80
    sampled = sample_block_pairs(XI, XT, 100, rng)
    assert all(v.size == 100 for v in sampled.values())
    assert sampled["II"].min() >= 0.0


def test_batch_sampler_mixes_modalities_and_neighbours():
    cross = np.array([[5, 6], [6, 7], [7, 5], [0, 1], [1, 2], [2, 0], [0, 1], [1, 2]])
    intra = np.array([[1, 2], [2, 0], [0, 1], [4, 5], [5, 6], [6, 7], [7, 3], [3, 4]])
    s = BatchSampler(3, 5, cross, intra, 4, torch.Generator().manual_seed(0))
    idx = s()
    assert torch.equal(idx, torch.unique(idx))
    assert (idx < 3).any() and (idx >= 3).any()


def test_make_mlp_is_reproducible_from_a_generator():
    a = make_mlp(8, (4,), generator=torch.Generator().manual_seed(1))
    b = MLPSpec(8, (4,)).build(torch.Generator().manual_seed(1))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="activation"):
        make_mlp(8, activation="swishy")


# -------------------------------------------------------------------------- evaluation


def test_compare_methods_and_table(data):
    XI, XT = data
    reports: list[tuple[float, str]] = []
    rows = compare_methods(
        XI,
        XT,
        methods=("mfm", "pca"),
        ks=(5, 10),
        method_params={"mfm": FAST},
        throughput_points=5_000,
        progress=lambda fraction, message: reports.append((fraction, message)),
    )
    assert [r["method"] for r in rows] == ["mfm", "pca"]
    assert reports == [(0.0, "fitting mfm (1/2)"), (0.5, "fitting pca (2/2)"), (1.0, "done")]
    assert rows[0]["transform_points_per_s"] > 0 and rows[1]["transform_points_per_s"] is None
    for r in rows:
        assert 0.0 < r["inter_T@10"] <= 1.0 and r["fit_seconds"] >= 0.0
    table = format_table(rows, ks=(5, 10))
    assert "| mfm |" in table and "inter T@10" in table
    plain = format_table(rows, ks=(5, 10), style="plain")
    assert plain.splitlines()[0].startswith("method")
    with pytest.raises(ValueError, match="unknown method"):
        compare_methods(XI, XT, methods=("mfm", "isomap"))


def test_compare_methods_fits_the_mfm_on_fewer_points_than_its_neighbours(data):
    XI, XT = data
    (row,) = compare_methods(
        XI[:6], XT[:9], methods=("mfm",), ks=(3,), method_params={"mfm": FAST}, throughput_points=0
    )
    assert row["params"]["n_neighbors"] == 5  # the default 15, capped below the 6 images
    assert row["Y_image"].shape == (6, 2) and np.isfinite(row["inter_T@3"])
