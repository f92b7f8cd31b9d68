"""The alignment Python API without a workspace: AlignmentTuner as an estimator, its fit
inputs, and the alignment state's files.

Small synthetic unit embeddings, so every case runs in well under a second.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from modalchorus.align.adapters import ModalityAdapters
from modalchorus.align.state import CONFIG_FILE, WEIGHTS_FILE, AlignmentState
from modalchorus.align.tuner import AlignmentTuner, IndexedIntent

N, N_IMAGES, DIM = 60, 40, 16
#: Rows 40-59 are texts; 45-49 are the "concepts" of the runs that pass some.
CONCEPTS = np.arange(45, 50)


def unit_rows(n: int = N, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


REFERENCE = unit_rows()
IS_IMAGE = np.arange(N) < N_IMAGES
PARENT = AlignmentState("toy", None, DIM)


def point(p: int = 0, target=(45, 46), avoid=(), strength: float = 1.0) -> IndexedIntent:
    return IndexedIntent(
        "point-set", strength, point=p, target=np.array(target), avoid=np.array(avoid, np.int64)
    )


def sets(a, b, mode: str = "align") -> IndexedIntent:
    return IndexedIntent(mode, 1.0, a=np.array(a, np.int64), b=np.array(b, np.int64))


def fit(tuner: AlignmentTuner, *args, **kwargs) -> AlignmentTuner:
    """``tuner.fit`` on the toy rows, with any argument replaced."""
    reference, is_image, intents, parent = args or (REFERENCE, IS_IMAGE, [point()], PARENT)
    return tuner.fit(reference, is_image, intents, parent, **kwargs)


def fitted_names(tuner: AlignmentTuner) -> list[str]:
    return sorted(n for n in vars(tuner) if n.endswith("_"))


# -- hyper-parameters ------------------------------------------------------------------


def test_get_params_set_params_round_trip_and_clone() -> None:
    from sklearn.base import clone

    tuner = AlignmentTuner("lora", steps=7, temperature=0.1, random_state=3)
    params = tuner.get_params(deep=False)
    assert params == tuner.get_params() and "progress" not in params  # JSON-serialisable
    assert AlignmentTuner(**params).get_params() == params
    copy = clone(tuner)
    assert copy is not tuner and copy.get_params() == params
    assert copy.set_params(steps=9, scope="adapter") is copy
    assert (copy.steps, copy.scope, tuner.steps) == (9, "adapter", 7)
    copy.set_params(progress=print)
    assert copy.progress is print
    with pytest.raises(ValueError, match="unknown parameter 'stepz'"):
        copy.set_params(stepz=3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # torch.manual_seed overflowed ("Overflow when unpacking long long", no name).
        ({"random_state": 2**64}, "random_state must be below 2**64"),
        # The others were "tuning diverged ...; lower learning_rate" (or non-finite
        # embeddings), blaming a parameter the user had not set.
        ({"temperature": 1e-45}, "temperature must be at least 0.0001"),
        ({"preserve_weight": 1e39}, "preserve_weight must be 'auto' or a finite number >= 0"),
        ({"weight_decay": 1e4}, "weight_decay times learning_rate must be at most 1"),
        ({"weight_decay": 2.0, "learning_rate": 1.0}, "weight_decay times learning_rate"),
    ],
)
def test_extreme_values_are_refused_by_name_at_fit(params, message) -> None:
    tuner = AlignmentTuner(steps=3, **params)  # construction checks nothing, as in sklearn
    with pytest.raises(ValueError, match=re.escape(message)):
        fit(tuner)
    assert fitted_names(tuner) == []


def test_the_same_seed_gives_identical_embeddings_and_leaves_global_rngs_alone() -> None:
    """Equal inputs and seed: bit-identical embeddings and state (a low-rank adapter has a
    random initial factor); the global torch and NumPy generators are not touched."""
    torch.manual_seed(123)
    expected = torch.rand(1)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        np.random.seed(123)  # noqa: NPY002 - the legacy global generator, checked below
        tuner = fit(AlignmentTuner(steps=10, adapter_rank=4, preserve_sample=8, random_state=5))
        runs.append(tuner)
        assert torch.equal(torch.rand(1), expected)
        assert np.random.rand() == np.random.RandomState(123).rand()  # noqa: NPY002
    first, second = runs
    np.testing.assert_array_equal(first.embeddings_, second.embeddings_)
    assert first.state_.digest() == second.state_.digest()
    assert first.loss_history_ == second.loss_history_
    other = fit(AlignmentTuner(steps=10, adapter_rank=4, preserve_sample=8, random_state=6))
    assert not np.array_equal(other.embeddings_, first.embeddings_)


# -- fit inputs ------------------------------------------------------------------------


def _with_row(value: float | None) -> np.ndarray:
    reference = REFERENCE.copy()
    if value is None:
        reference[3] = 0
    else:
        reference[3, 0] = value
    return reference


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        # Each was a misleading "tuning diverged ...; lower learning_rate (was 0.001)".
        ((_with_row(np.nan), IS_IMAGE, [point()], PARENT), {}, "reference row 3 is not finite"),
        ((_with_row(np.inf), IS_IMAGE, [point()], PARENT), {}, "reference row 3 is not finite"),
        ((REFERENCE.astype(np.float64) * 1e300, IS_IMAGE, [point()], PARENT), {}, "float32"),
        ((REFERENCE[:, :0], IS_IMAGE, [point()], PARENT), {}, r"shape \(n, d\) with n, d >= 1"),
        # Accepted: a row without a direction.
        ((_with_row(None), IS_IMAGE, [point()], PARENT), {}, "reference row 3 is all zeros"),
        # An IndexError from a boolean mask of the wrong shape.
        (
            (REFERENCE, IS_IMAGE[:, None], [point()], PARENT),
            {},
            r"is_image must have shape \(60,\)",
        ),
        # Any non-zero value was taken as "image".
        ((REFERENCE, IS_IMAGE * 2, [point()], PARENT), {}, "is_image must hold booleans"),
        # A state of another dimension was extended with adapters it cannot hold.
        ((REFERENCE, IS_IMAGE, [point()], AlignmentState("toy", None, 8)), {}, "dimension 16"),
        # IndexError / negative rows silently taken from the end.
        ((REFERENCE, IS_IMAGE, [point()], PARENT), {"concepts": [N + 3]}, "concepts names row 63"),
        ((REFERENCE, IS_IMAGE, [point()], PARENT), {"concepts": [-1]}, "concepts names row -1"),
        # An AttributeError ('list' object has no attribute 'rows').
        ((REFERENCE, IS_IMAGE, ["x"], PARENT), {}, "intent 1 is not an IndexedIntent"),
    ],
    ids=[
        "nan",
        "inf",
        "beyond-float32",
        "no-columns",
        "zero-row",
        "is_image-2d",
        "is_image-2",
        "parent-dim",
        "concept-past-end",
        "concept-negative",
        "not-an-intent",
    ],
)
def test_bad_fit_inputs_are_refused_clearly(args, kwargs, message) -> None:
    tuner = AlignmentTuner(steps=3)
    with pytest.raises(ValueError, match=message):
        fit(tuner, *args, **kwargs)
    assert fitted_names(tuner) == []


def test_reference_rows_of_any_scale_are_directions() -> None:
    """As ModalFusionMap: a row's length is not an embedding's meaning. Before, rows of
    another length entered the preservation term (and its softmax logits) as they were."""
    scales = np.geomspace(1e-3, 1e20, N).astype(np.float32)[:, None]
    scaled = REFERENCE * scales
    given = scaled.copy()
    intents = [point(0, avoid=(47,))]
    unit = fit(AlignmentTuner(steps=20), REFERENCE, IS_IMAGE, intents, PARENT, concepts=CONCEPTS)
    tuner = fit(AlignmentTuner(steps=20), scaled, IS_IMAGE, intents, PARENT, concepts=CONCEPTS)
    np.testing.assert_allclose(tuner.embeddings_, unit.embeddings_, atol=1e-5)
    np.testing.assert_array_equal(scaled, given)  # the caller's array is not changed


@pytest.mark.parametrize(
    ("intent", "message"),
    [
        # IndexError / AssertionError / rows silently taken from the end of the array.
        (point(N + 5), "intent 1 point names row 65, outside the 60 rows"),
        (point(-1), "intent 1 point names row -1"),
        (point(0, target=(N + 5,)), "intent 1 target names row 65"),
        (point(0, target=(-3,)), "intent 1 target names row -3"),
        (point(0, target=(45.7,)), "intent 1 target must be a 1-D array of row indices"),
        (sets([1, N], [2]), "intent 1 a names row 60"),
        # "need at least one array to concatenate" / "tuning diverged (the loss is inf)".
        (point(0, target=()), "target set is empty or holds only the point"),
        (point(0, target=(0,)), "target set is empty or holds only the point"),
        # Accepted: the point pushed away from itself; target and avoid contradicting.
        (point(0, avoid=(0, 47)), r"the point \(row 0\) is in its avoid set"),
        (point(0, avoid=(45, 47)), "1 row\\(s\\) are in both target and avoid, e.g. 45"),
        # Accepted: a set-set intent with nothing to move (its loss is 0 throughout).
        (sets([1, 2], [2, 1]), "sets a and b are the same rows"),
        # "tuning diverged (the loss is nan)": the centroid of an empty set.
        (sets([], [1, 2]), "set a is empty"),
        (sets([1], [], "separate"), "set b is empty"),
        # Accepted: an unknown kind was run as "align".
        (sets([1], [2], "merge"), "kind must be 'point-set', 'align' or 'separate'"),
        # Accepted: a negative strength reverses the intent; NaN "diverged".
        (point(strength=-1.0), "intent 1 strength must be a finite number > 0"),
        (point(strength=float("nan")), "intent 1 strength"),
        (
            IndexedIntent("point-set", 1.0, point=0, target=np.array([45]), a=np.array([3])),
            "no sets a",
        ),
        (IndexedIntent("align", 1.0, point=0, a=np.array([1]), b=np.array([2])), "no point"),
    ],
)
def test_bad_intents_are_refused_by_number(intent, message) -> None:
    tuner = AlignmentTuner(steps=3)
    with pytest.raises(ValueError, match=message):
        fit(tuner, REFERENCE, IS_IMAGE, [intent, point()], PARENT)
    assert fitted_names(tuner) == []


def test_bad_intents_name_their_position() -> None:
    with pytest.raises(ValueError, match="intent 2 point names row 65"):
        fit(AlignmentTuner(steps=3), REFERENCE, IS_IMAGE, [point(), point(N + 5)], PARENT)
    with pytest.raises(ValueError, match="no intents to tune for"):
        fit(AlignmentTuner(steps=3), REFERENCE, IS_IMAGE, [], PARENT)


@pytest.mark.parametrize(
    ("is_image", "intents", "concepts"),
    [
        (np.ones(N, bool), [point(0, target=(45, 46))], None),  # images only
        (np.zeros(N, bool), [point(0, target=(45, 46))], CONCEPTS),  # texts only
        (IS_IMAGE.astype(int), [point(0, target=(0, 45, 46))], CONCEPTS),  # 0/1; point in target
        (IS_IMAGE, [point(), point(), sets([1, 2], [3, 4], "separate")], None),  # a repeat
    ],
    ids=["images-only", "texts-only", "point-in-its-target", "repeated-intent"],
)
def test_edge_inputs_that_make_sense_fit(is_image, intents, concepts) -> None:
    tuner = fit(AlignmentTuner(steps=5), REFERENCE, is_image, intents, PARENT, concepts=concepts)
    assert tuner.embeddings_.shape == REFERENCE.shape
    assert np.allclose(np.linalg.norm(tuner.embeddings_, axis=1), 1, atol=1e-5)


def test_a_failed_fit_leaves_the_tuner_unfitted() -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    tuner = AlignmentTuner(steps=3)
    with pytest.raises(NotFittedError):
        check_is_fitted(tuner)
    tuner.validate()  # resolves "auto" values, fits nothing
    with pytest.raises(NotFittedError):
        check_is_fitted(tuner)
    fit(tuner)
    check_is_fitted(tuner)
    assert {"embeddings_", "state_", "loss_history_", "steps_"} <= set(fitted_names(tuner))
    # A refit that fails after the tuning started (here a cancel from progress) leaves
    # neither the earlier fit's results nor its own partial ones.

    def cancel(fraction: float, message: str) -> None:
        if message.startswith("tuning step 2/"):
            raise KeyboardInterrupt

    tuner.set_params(progress=cancel)
    with pytest.raises(KeyboardInterrupt):
        fit(tuner)
    assert fitted_names(tuner) == []
    with pytest.raises(NotFittedError):
        check_is_fitted(tuner)
    tuner.set_params(progress=None, steps=0)
    with pytest.raises(ValueError, match="steps must be"):
        fit(tuner)
    assert fitted_names(tuner) == []
    # validate() sets the resolved values only when every parameter is good.
    tuner = AlignmentTuner(steps=5, learning_rate=-1.0)
    with pytest.raises(ValueError, match="learning_rate must be"):
        tuner.validate()
    assert fitted_names(tuner) == []


# -- alignment state files -------------------------------------------------------------


def toy_state(base_spec: str | None = "pocket") -> tuple[AlignmentState, str]:
    gen = torch.Generator().manual_seed(0)
    adapters = ModalityAdapters(8, None, {"image": torch.randn(8, generator=gen)})
    with torch.no_grad():
        adapters.image.linear[0].weight.copy_(torch.randn(8, 8, generator=gen))
    state = AlignmentState("pocket@x-224px", base_spec, 8, adapters=[adapters.state_dict()])
    return state, state.encoder_id("adapter")


def _edit_config(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(files[CONFIG_FILE])
    for key, value in changes.items():
        if value is ...:
            del config[key]
        else:
            config[key] = value
    return {**files, CONFIG_FILE: json.dumps(config).encode()}


def _edit_weights(files: dict[str, bytes], change) -> dict[str, bytes]:
    tensors = dict(load_tensors(files[WEIGHTS_FILE]))
    change(tensors)
    return {**files, WEIGHTS_FILE: save_tensors(tensors)}


def _add_one(tensors: dict) -> None:
    tensors["adapter.0.image.linear.0.weight"] = tensors["adapter.0.image.linear.0.weight"] + 1


def test_state_files_round_trip() -> None:
    state, encoder_id = toy_state()
    loaded, loaded_id = AlignmentState.from_files(state.to_files(encoder_id))
    assert loaded_id == encoder_id and loaded.digest() == state.digest()
    for key, value in state.adapters[0].items():
        torch.testing.assert_close(loaded.adapters[0][key], value)
    # base_spec is the one field a user may fill in (loading asks for it when it is null).
    unnamed, unnamed_id = toy_state(base_spec=None)
    named = _edit_config(unnamed.to_files(unnamed_id), base_spec="pocket:/my/heads")
    assert AlignmentState.from_files(named)[0].base_spec == "pocket:/my/heads"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # Each loaded as the recorded version: the same id for other weights or settings.
        (lambda f: _edit_weights(f, _add_one), "edited or damaged"),
        (lambda f: _edit_weights(f, lambda t: t.update(junk=torch.zeros(1))), "edited or damaged"),
        (
            lambda f: _edit_weights(f, lambda t: t.update({k: v.double() for k, v in t.items()})),
            "edited or damaged",
        ),
        (lambda f: _edit_config(f, dim=9), "edited or damaged"),
        (lambda f: _edit_config(f, tower="everything"), "edited or damaged"),
        (lambda f: _edit_config(f, base_encoder_id="hf:other@1"), "edited or damaged"),
        (lambda f: _edit_config(f, encoder_id="pocket@x-224px~adapter@000000000000"), "edited"),
        # KeyError 'image.linear.0.weight' / an "unexpected tensor" / a RuntimeError.
        (lambda f: _edit_config(f, n_adapters=2), "edited or damaged"),
        (lambda f: _edit_config(f, n_adapters=0), "edited or damaged"),
        (
            lambda f: _edit_weights(
                f, lambda t: t.update({"adapter.0.image.centre": torch.zeros(3)})
            ),
            "edited or damaged",
        ),
        # KeyError / "invalid literal for int()".
        (lambda f: _edit_config(f, n_adapters=...), "alignment.json lacks n_adapters"),
        (lambda f: _edit_config(f, encoder_id=...), "alignment.json lacks encoder_id"),
        (lambda f: _edit_config(f, dim="eight"), "edited or damaged"),
        (lambda f: {**f, WEIGHTS_FILE: f[WEIGHTS_FILE][:-8]}, "not a valid safetensors file"),
    ],
    ids=[
        "weight-values",
        "extra-tensor",
        "float64",
        "dim",
        "tower",
        "base-encoder",
        "encoder-id",
        "more-adapters",
        "no-adapters",
        "centre-shape",
        "no-n_adapters",
        "no-encoder_id",
        "dim-string",
        "truncated",
    ],
)
def test_edited_or_damaged_state_files_are_refused(edit, message) -> None:
    state, encoder_id = toy_state()
    with pytest.raises(ValueError, match=message):
        AlignmentState.from_files(edit(state.to_files(encoder_id)))
