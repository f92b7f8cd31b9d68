"""The tuning loop: intents + preservation -> a new alignment state and new embeddings.

Rows are the items a run may move (every item with an embedding in the parent version),
images and texts mixed; ``reference`` holds their parent embeddings. Each step embeds the
rows the intents name, a sample of negatives and a sample of the other rows, and
minimises::

    sum_i strength_i * intent_term_i / n_intents  +  preserve_weight * preservation

where preservation = mean (1 - cos) of a sample of the rows no intent names to their parent
embeddings + the same mean over the anchors (every member of a target or avoid set: what a
point moves toward or away from) + the KL divergence of the sampled rows' softmax
similarities over the concepts (their zero-shot logits, when the concepts are class prompts)
(:mod:`modalchorus.align.losses`). The anchors get a mean of their own so that a few of them
are not outweighed by a thousand sampled rows: the point moves to the set, the set stays.
When a point-set intent targets concept texts, every concept text is an anchor.
Without preservation few-shot tuning wrecks the rest of the space (DESIGN §7).

A point-set term contrasts the point's similarity to its target with its similarity to
negatives: the avoid set, and, when the target is concept texts (a class's prompts), every
other concept, as zero-shot classification does (the mean of the two terms when both apply);
without either, sampled rows of the target's modalities.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from modalchorus.align import losses
from modalchorus.align.adapters import ModalityAdapters
from modalchorus.align.intents import MAX_STRENGTH, MODES
from modalchorus.align.state import AlignmentState, apply_adapters
from modalchorus.align.towers import (
    TOWER_SCOPES,
    TowerTuning,
    inject_lora,
    load_tower_state,
    tower_parameters,
    tuning_view,
)
from modalchorus.encoders.base import Encoder
from modalchorus.estimator import UnsupervisedEstimator

SCOPES = ("adapter", *TOWER_SCOPES)
#: Per-scope defaults of the "auto" parameters, chosen with ``benchmarks/bench_alignment.py``
#: on CIFAR-10 test images 5000-6999 and 8000-9999 (see RESULTS.md). The tower scopes
#: embed every preservation row through the encoder each step, hence their smaller sample.
#: The adapter's strong preservation weight keeps the other classes' zero-shot logits while
#: its point-set terms compete with every class (a weaker one lets them drop 1-2 points).
SCOPE_DEFAULTS = {
    "adapter": {
        "steps": 150,
        "learning_rate": 1e-3,
        "preserve_sample": 1024,
        "preserve_weight": 30.0,
    },
    "lora": {"steps": 80, "learning_rate": 5e-3, "preserve_sample": 512, "preserve_weight": 3.0},
    "last-blocks": {
        "steps": 80,
        "learning_rate": 1e-4,
        "preserve_sample": 512,
        "preserve_weight": 3.0,
    },
}
EMBED_BATCH = 256
#: Progress-bar spans of a run's phases. Tower scopes first prepare every image with the
#: frozen encoder (often the longest part on a CPU); every scope ends by re-embedding all
#: rows (from the end of its tuning span to 1).
_PREPARE_SPAN = (0.0, 0.3)
_TUNING_SPAN = {"adapter": (0.0, 0.95), "towers": (0.3, 0.8)}


@dataclass(frozen=True)
class IndexedIntent:
    """An intent over row indices (see :func:`index_intents`).

    Attributes
    ----------
    kind : {"point-set", "align", "separate"}
    strength : float
    point : int
        Row of the point (point-set only, else -1).
    target, avoid : numpy.ndarray of int
        Rows of the target / avoid sets (point-set; ``avoid`` may be empty; the module
        docstring says which negatives a point-set term uses).
    a, b : numpy.ndarray of int
        Rows of the two sets (set-set).
    """

    kind: str
    strength: float
    point: int = -1
    target: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    avoid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    a: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    b: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def rows(self) -> np.ndarray:
        """Every row the intent names."""
        return np.unique(np.concatenate([self.moving(), self.target, self.avoid]))

    def moving(self) -> np.ndarray:
        """Rows the intent means to move: the point, or both sets of a set-set intent.

        Target and avoid sets are anchors: they stay under the preservation term.
        """
        point = [self.point] if self.point >= 0 else []
        return np.unique(np.concatenate([point, self.a, self.b])).astype(np.int64)


class _AdapterRows:
    """Embeds rows through a new, trainable adapter on the parent embeddings.

    Each modality's adapter is centred on the mean of that modality's parent embeddings.
    """

    def __init__(self, reference: torch.Tensor, is_image: torch.Tensor, rank: int | None) -> None:
        self.reference, self.is_image = reference, is_image
        centres = {
            modality: reference[mask].mean(0)
            for modality, mask in (("image", is_image), ("text", ~is_image))
            if mask.any()
        }
        self.adapters = ModalityAdapters(reference.shape[1], rank, centres)

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.adapters.parameters())

    def embed(self, rows: torch.Tensor) -> torch.Tensor:
        return self.adapters(self.reference[rows], self.is_image[rows])


class _TowerRows:
    """Embeds rows through a tuned copy of the encoder, then the parent's adapter chain."""

    def __init__(
        self,
        view: TowerTuning,
        params: list[torch.nn.Parameter],
        image_inputs: dict[str, torch.Tensor],
        text_inputs: dict[str, torch.Tensor],
        is_image: torch.Tensor,
        chain: list[ModalityAdapters],
    ) -> None:
        self.view, self._params, self.chain = view, params, chain
        self.image_inputs, self.text_inputs, self.is_image = image_inputs, text_inputs, is_image
        # Row -> position among the rows of its modality.
        self.position = torch.zeros(len(is_image), dtype=torch.long)
        self.position[is_image] = torch.arange(int(is_image.sum()))
        self.position[~is_image] = torch.arange(int((~is_image).sum()))

    def parameters(self) -> list[torch.nn.Parameter]:
        return self._params

    def embed(self, rows: torch.Tensor) -> torch.Tensor:
        image = self.is_image[rows]
        out = torch.empty(len(rows), self.view.encoder.dim)
        for mask, inputs, embed, modality in (
            (image, self.image_inputs, self.view.embed_images, "image"),
            (~image, self.text_inputs, self.view.embed_texts, "text"),
        ):
            if mask.any():
                pos = self.position[rows[mask]]
                z = embed({k: v[pos] for k, v in inputs.items()})
                out = out.index_put(
                    (mask.nonzero().squeeze(1),), apply_adapters(self.chain, z, modality)
                )
        return out


#: Most optimisation steps one run may take.
MAX_STEPS = 1_000_000
#: Highest LoRA or adapter rank (embeddings and tower widths are well under it).
MAX_RANK = 4_096
#: Smallest softmax temperature: the softmax of cosines is a hard maximum well before it;
#: smaller ones only scale the losses up, until float32 overflows (at about 1e-38).
MIN_TEMPERATURE = 1e-4
#: Largest preservation weight: beyond it every row is frozen and float32 losses overflow.
MAX_PRESERVE_WEIGHT = 1e6
#: Largest seed (``torch.manual_seed`` takes 64 bits).
MAX_SEED = 2**64 - 1
#: How far a reference row's L2 norm may be from 1 before fit normalises it.
UNIT_TOLERANCE = 1e-3


def _integer(
    name: str, value: Any, low: int, high: int | None, *, auto: bool = False, none: bool = False
) -> int:
    """``value`` as an int in ``[low, high]``, or a ValueError naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < low
        or (high is not None and value > high)
    ):
        allowed = "'auto' or " if auto else "null or " if none else ""
        bounds = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high:,}]"
        raise ValueError(f"{name} must be {allowed}{bounds}, got {value!r}")
    return int(value)


def _number(
    name: str,
    value: Any,
    low: float,
    high: float | None,
    *,
    auto: bool = False,
    open_low: bool = False,
) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.number)
        and np.isfinite(value)
        and (value > low if open_low else value >= low)
        and (high is None or value <= high)
    )
    if not ok:
        lower = f"> {low}" if open_low else f">= {low}"
        bounds = f"a finite number {lower}" + ("" if high is None else f" and <= {high}")
        allowed = "'auto' or " if auto else ""
        raise ValueError(f"{name} must be {allowed}{bounds}, got {value!r}")
    return float(value)


def _row_indices(name: str, values: Any, n: int) -> np.ndarray:
    """``values`` as a 1-D int64 array of rows in ``[0, n)``, or a ValueError naming ``name``."""
    rows = np.asarray(values)
    if rows.size == 0:
        return np.zeros(0, np.int64)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D array of row indices, got {rows!r}")
    if rows.min() < 0 or rows.max() >= n:
        bad = int(rows[(rows < 0) | (rows >= n)][0])
        raise ValueError(f"{name} names row {bad}, outside the {n} rows of reference")
    return rows.astype(np.int64)


def _check_rows(
    reference: Any, is_image: Any, parent: AlignmentState, concepts: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``(reference float32 (n, d), is_image bool (n,), concepts int64)``.

    Rows of another length than 1 are L2-normalised (a copy).

    Raises
    ------
    ValueError
        Naming what is wrong: shapes, dtypes, non-finite or all-zero rows, a ``parent`` of
        another dimension, concept rows out of range.
    """
    ref = np.asarray(reference)
    if ref.ndim != 2 or ref.shape[0] == 0 or ref.shape[1] == 0:
        raise ValueError(f"reference must have shape (n, d) with n, d >= 1, got {ref.shape}")
    if ref.dtype.kind not in "fiu":
        raise ValueError(f"reference must hold real numbers, got dtype {ref.dtype}")
    with np.errstate(over="ignore"):
        ref = np.ascontiguousarray(ref, np.float32)
    finite = np.isfinite(ref).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"reference row {row} is not finite (NaN, inf or beyond float32's range); "
            f"{int((~finite).sum())} such row(s)"
        )
    norms = np.sqrt(np.einsum("ij,ij->i", ref, ref, dtype=np.float64))  # float32 squares overflow
    if not norms.all():
        row = int(np.flatnonzero(norms == 0)[0])
        raise ValueError(f"reference row {row} is all zeros: an embedding needs a direction")
    # Preservation compares unit outputs with these rows: any scale is taken as a direction,
    # as ModalFusionMap does; unit rows are left exactly as given.
    off = np.abs(norms - 1) > UNIT_TOLERANCE
    if off.any():
        ref = ref.copy()  # may be the caller's array
        ref[off] = ref[off] / norms[off, None]
    n, dim = ref.shape
    image = np.asarray(is_image)
    if image.shape != (n,):
        raise ValueError(f"is_image must have shape ({n},) as reference's rows, got {image.shape}")
    if image.dtype != bool and not (image.dtype.kind in "iuf" and np.isin(image, (0, 1)).all()):
        raise ValueError(f"is_image must hold booleans (or 0 and 1), got dtype {image.dtype}")
    if parent.dim != dim:
        raise ValueError(
            f"reference has dimension {dim} but the parent state {parent.dim} "
            f"(of {parent.base_encoder_id!r})"
        )
    rows = _row_indices("concepts", [] if concepts is None else concepts, n)
    return ref, image.astype(bool), rows


def _check_intents(intents: Any, n: int) -> list[IndexedIntent]:
    """``intents`` with every row set a 1-D int64 array in ``[0, n)``.

    The checks of :func:`modalchorus.align.intents.resolve_intents`, on rows.

    Raises
    ------
    ValueError
        No intents; an intent naming rows out of range, of an unknown kind or strength,
        with an empty set, a point in its avoid set (or its target holding only the
        point), target and avoid sets that overlap, or sets a and b that are the same.
    """
    if isinstance(intents, IndexedIntent) or not isinstance(intents, Sequence):
        raise ValueError(f"intents must be a sequence of IndexedIntent, got {intents!r}")
    if not intents:
        raise ValueError("no intents to tune for")
    checked = []
    for number, intent in enumerate(intents, 1):
        where = f"intent {number}"
        if not isinstance(intent, IndexedIntent):
            raise ValueError(f"{where} is not an IndexedIntent (see index_intents): {intent!r}")
        if intent.kind not in ("point-set", *MODES):
            raise ValueError(
                f"{where}: kind must be 'point-set', 'align' or 'separate', got {intent.kind!r}"
            )
        strength = _number(f"{where} strength", intent.strength, 0, MAX_STRENGTH, open_low=True)
        sets = {
            k: _row_indices(f"{where} {k}", getattr(intent, k), n)
            for k in ("target", "avoid", "a", "b")
        }
        point = intent.point
        if intent.kind == "point-set":
            if isinstance(point, bool) or not isinstance(point, int | np.integer):
                raise ValueError(f"{where}: point must be a row index, got {point!r}")
            point = int(_row_indices(f"{where} point", [point], n)[0])
            if len(sets["a"]) or len(sets["b"]):
                raise ValueError(f"{where}: a point-set intent has no sets a and b")
            target, avoid = sets["target"], sets["avoid"]
            if set(target.tolist()) <= {point}:
                raise ValueError(f"{where}: the target set is empty or holds only the point")
            if point in avoid:
                raise ValueError(f"{where}: the point (row {point}) is in its avoid set")
            both = np.intersect1d(target, avoid)
            if len(both):
                raise ValueError(
                    f"{where}: {len(both)} row(s) are in both target and avoid, e.g. {both[0]}"
                )
        else:
            if point != -1 or len(sets["target"]) or len(sets["avoid"]):
                raise ValueError(f"{where}: a set-set intent has no point, target or avoid")
            for k in ("a", "b"):
                if not len(sets[k]):
                    raise ValueError(f"{where}: set {k} is empty")
            if set(sets["a"].tolist()) == set(sets["b"].tolist()):
                raise ValueError(f"{where}: sets a and b are the same rows")
        checked.append(replace(intent, strength=strength, point=point, **sets))
    return checked


class AlignmentTuner(UnsupervisedEstimator):
    """Tune an embedding version toward stated intents while preserving everything else.

    Parameters
    ----------
    scope : {"adapter", "lora", "last-blocks"}
        ``adapter``: a new residual linear map per modality on the parent embeddings (no raw
        inputs needed). ``lora``: LoRA layers (peft) in the encoder's towers/heads.
        ``last-blocks``: the encoder's last blocks (see :mod:`modalchorus.align.towers`).
    steps : int | "auto"
        Optimisation steps; "auto" takes the scope's default (:data:`SCOPE_DEFAULTS`).
    learning_rate : float | "auto"
        Adam learning rate; "auto" takes the scope's default.
    temperature : float
        Softmax temperature of the point-set term, at least :data:`MIN_TEMPERATURE`.
    preserve_weight : float | "auto"
        Weight of the preservation term, at most :data:`MAX_PRESERVE_WEIGHT`; "auto" takes
        the scope's default.
    preserve_sample : int | "auto"
        Rows not named by any intent sampled per step for the preservation term; "auto"
        takes the scope's default.
    negative_sample : int
        Rows sampled per step as negatives of point-set intents without an avoid set.
    separate_margin : float
        Centroid cosine below which ``separate`` intents stop pushing.
    lora_rank, lora_alpha : int, float
        LoRA rank and scaling (``lora`` scope).
    hold_anchors : bool
        Keep the members of target/avoid sets under the preservation term, with a mean of
        their own (the point moves toward the set, not the set toward the point). When a
        point-set intent targets concept texts, every concept text is held so.
    free_contested : bool
        Exempt from the zero-shot-logit preservation the rows whose nearest concept is an
        anchor (they sit in a class the intents contest, so they may change side).
    weight_decay : float
        AdamW weight decay on the tuned parameters; ``weight_decay * learning_rate`` at
        most 1.
    adapter_rank : int | None
        Rank of the ``adapter`` scope's residual maps (None: full rank). A low rank limits a
        run to a few random directions of change; the full-rank map, read on centred
        embeddings, generalises better from a few examples (see RESULTS.md).
    random_state : int
        Seed of the row sampling and of the initial weights (and of nothing global), in
        ``[0, 2**64)``: equal inputs and seed give identical embeddings.
    progress : callable, optional
        ``progress(fraction, message)`` during :meth:`fit`.

    Attributes
    ----------
    embeddings_ : numpy.ndarray, shape (n, d), float32
        New unit embeddings of every row.
    state_ : AlignmentState
        The tuned state (parent state + what this run changed).
    loss_history_ : list[float]
        Total loss per step.
    steps_, learning_rate_, preserve_sample_, preserve_weight_ : int, float, int, float
        Resolved values of the "auto" parameters.
    seconds_ : float
        Wall time of :meth:`fit`.

    Notes
    -----
    Hyper-parameters are checked by name when :meth:`fit` (or :meth:`validate`) runs, as
    scikit-learn does; a failed fit leaves no fitted attribute.
    """

    def __init__(
        self,
        scope: str = "adapter",
        *,
        steps: int | str = "auto",
        learning_rate: float | str = "auto",
        temperature: float = 0.2,
        preserve_weight: float | str = "auto",
        preserve_sample: int | str = "auto",
        negative_sample: int = 128,
        separate_margin: float = 0.0,
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        hold_anchors: bool = True,
        free_contested: bool = True,
        weight_decay: float = 0.0,
        adapter_rank: int | None = None,
        random_state: int = 0,
        progress: Callable[[float, str], None] | None = None,
    ) -> None:
        self.scope = scope
        self.steps = steps
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.preserve_weight = preserve_weight
        self.preserve_sample = preserve_sample
        self.negative_sample = negative_sample
        self.separate_margin = separate_margin
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.hold_anchors = hold_anchors
        self.weight_decay = weight_decay
        self.adapter_rank = adapter_rank
        self.free_contested = free_contested
        self.random_state = random_state
        self.progress = progress

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters, as scikit-learn's ``get_params`` (``deep`` has no effect).

        JSON-serialisable: the progress callback is left out, so a ``sklearn.base.clone``
        has the same hyper-parameters and no callback.
        """
        return {k: getattr(self, k) for k in self._param_names() if k != "progress"}

    def set_params(self, **params: Any) -> AlignmentTuner:
        """Set constructor parameters (``progress`` too); unknown names raise ``ValueError``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"unknown parameter {name!r}; use any of {', '.join(valid)}")
            setattr(self, name, value)
        return self

    @classmethod
    def _param_names(cls) -> list[str]:
        return [k for k in inspect.signature(cls.__init__).parameters if k != "self"]

    def __sklearn_is_fitted__(self) -> bool:
        """Whether :meth:`fit` has succeeded (:meth:`validate` alone does not fit)."""
        return hasattr(self, "state_")

    def validate(self) -> AlignmentTuner:
        """Check the hyper-parameters and resolve the "auto" ones (``fit`` does it too).

        The resolved values (``steps_``, ...) are set only when every check passes.

        Raises
        ------
        ValueError
            Naming the bad parameter.
        """
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}; use one of {', '.join(SCOPES)}")
        defaults = SCOPE_DEFAULTS[self.scope]

        def resolved(name: str) -> Any:
            value = getattr(self, name)
            return defaults[name] if isinstance(value, str) and value == "auto" else value

        steps = _integer("steps", resolved("steps"), 1, MAX_STEPS, auto=True)
        # AdamW steps beyond 1 only diverge.
        learning_rate = _number(
            "learning_rate", resolved("learning_rate"), 0, 1, auto=True, open_low=True
        )
        preserve_sample = _integer(
            "preserve_sample", resolved("preserve_sample"), 0, None, auto=True
        )
        preserve_weight = _number(
            "preserve_weight", resolved("preserve_weight"), 0, MAX_PRESERVE_WEIGHT, auto=True
        )
        if _number("temperature", self.temperature, 0, None, open_low=True) < MIN_TEMPERATURE:
            raise ValueError(
                f"temperature must be at least {MIN_TEMPERATURE:g} (the softmax is a hard "
                f"maximum there already), got {self.temperature!r}"
            )
        _integer("negative_sample", self.negative_sample, 1, None)
        _number("separate_margin", self.separate_margin, -1, 1)  # a cosine
        _integer("lora_rank", self.lora_rank, 1, MAX_RANK)
        _number("lora_alpha", self.lora_alpha, 0, None, open_low=True)
        # AdamW scales the weights by 1 - lr * weight_decay each step: past 1 they flip and grow.
        if _number("weight_decay", self.weight_decay, 0, None) * learning_rate > 1:
            raise ValueError(
                f"weight_decay times learning_rate must be at most 1, got {self.weight_decay!r} "
                f"x {learning_rate:g}"
            )
        if self.adapter_rank is not None:
            _integer("adapter_rank", self.adapter_rank, 1, MAX_RANK, none=True)
        if _integer("random_state", self.random_state, 0, None) > MAX_SEED:
            raise ValueError(
                f"random_state must be below 2**64 (a 64-bit seed), got {self.random_state}"
            )
        for name in ("hold_anchors", "free_contested"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        self.steps_, self.learning_rate_ = steps, learning_rate
        self.preserve_sample_, self.preserve_weight_ = preserve_sample, preserve_weight
        return self

    def fit(
        self,
        reference: np.ndarray,
        is_image: np.ndarray,
        intents: Sequence[IndexedIntent],
        parent: AlignmentState,
        *,
        encoder: Encoder | None = None,
        images: Callable[[], Sequence[Image.Image]] | None = None,
        texts: Sequence[str] | None = None,
        concepts: np.ndarray | None = None,
    ) -> AlignmentTuner:
        """Tune.

        Parameters
        ----------
        reference : numpy.ndarray, shape (n, d)
            Parent-version embeddings of the rows (unit rows; others are normalised).
        is_image : numpy.ndarray, shape (n,), bool
            Modality of each row.
        intents : Sequence[IndexedIntent]
            At least one.
        parent : AlignmentState
            State of the parent version (its tower state is the starting point and its
            adapter chain is kept).
        encoder : Encoder, optional
            Base encoder (tower scopes only; it is copied, never changed).
        images : callable, optional
            Returns the image rows' images in row order (tower scopes only).
        texts : Sequence[str], optional
            The text rows' strings in row order (tower scopes only).
        concepts : numpy.ndarray of int, optional
            Rows of concept texts (e.g. class prompts): the preservation term keeps every
            other row's softmax similarities over them (its zero-shot logits). Without
            concepts, the similarities over each step's sampled rows are kept instead.

        Returns
        -------
        AlignmentTuner
            ``self``.

        Raises
        ------
        ValueError
            Bad hyper-parameters; ``reference`` rows not finite or all zeros; ``is_image``,
            ``concepts`` or ``parent`` not matching it; intents naming rows out of range,
            empty sets, a point in its own avoid set, a target set that overlaps its avoid
            set or holds only the point, or a set-set intent over one set twice. After any
            error the tuner is unfitted (no attribute of an earlier fit is left).
        """
        try:
            self._fit(reference, is_image, intents, parent, encoder, images, texts, concepts)
        except BaseException:
            self._forget_fit()  # a failed (re)fit must not leave half-updated attributes
            raise
        return self

    def _fit(
        self,
        reference: np.ndarray,
        is_image: np.ndarray,
        intents: Sequence[IndexedIntent],
        parent: AlignmentState,
        encoder: Encoder | None,
        images: Callable[[], Sequence[Image.Image]] | None,
        texts: Sequence[str] | None,
        concepts: np.ndarray | None,
    ) -> None:
        self.validate()
        start = time.perf_counter()
        reference, is_image, concepts = _check_rows(reference, is_image, parent, concepts)
        intents = _check_intents(intents, len(reference))
        n = len(reference)
        rng = np.random.default_rng(self.random_state)
        ref = torch.from_numpy(reference)
        image_mask = torch.from_numpy(is_image)
        state = copy.deepcopy(parent)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
            torch.manual_seed(self.random_state)
            embedder = self._embedder(ref, image_mask, state, encoder, images, texts)
        optimiser = torch.optim.AdamW(
            embedder.parameters(), lr=self.learning_rate_, weight_decay=self.weight_decay
        )

        named = np.unique(np.concatenate([i.rows() for i in intents]))
        moving = np.unique(np.concatenate([i.moving() for i in intents]))
        anchors = np.setdiff1d(named, moving)  # target/avoid sets: what points move toward
        others = np.setdiff1d(np.arange(n), named)
        # Zero-shot logits are kept over the concepts for the rows whose nearest concept is
        # not an anchor: rows already in a contested set may change side.
        relation = self._concepts = concepts
        contested = np.zeros(len(others), bool)
        if len(relation) and self.free_contested:
            nearest = relation[np.argmax(reference[others] @ reference[relation].T, axis=1)]
            contested = np.isin(nearest, anchors)
        held = anchors if self.hold_anchors else np.zeros(0, np.int64)
        if self.hold_anchors and any(_joins_concepts(i, relation) for i in intents):
            # A point joining a concept competes with every concept: they all stay, as the
            # classifier the point is moved within.
            held = np.union1d(held, np.setdiff1d(relation, moving))
        pools = {
            m: np.flatnonzero(np.asarray(is_image) == (m == "image")) for m in ("image", "text")
        }
        self.loss_history_: list[float] = []
        start_share, end_share = _TUNING_SPAN["adapter" if self.scope == "adapter" else "towers"]
        tuning = self._phase(start_share, end_share, "tuning step")
        for step in range(self.steps_):
            negatives = {
                m: rng.choice(p, min(len(p), self.negative_sample), replace=False)
                for m, p in pools.items()
            }
            pick = rng.choice(len(others), min(len(others), self.preserve_sample_), replace=False)
            sample = others[pick]
            sampled = np.concatenate(list(negatives.values()))
            rows = np.unique(np.concatenate([named, sample, relation, sampled]))
            at = _row_getter(rows, embedder.embed(torch.from_numpy(rows)))
            terms = [
                intent.strength * self._intent_loss(intent, at, negatives, is_image)
                for intent in intents
            ]
            loss = torch.stack(terms).mean()
            if self.preserve_weight_ > 0 and len(held) + len(sample):
                preserve = sum(
                    losses.preservation_loss(at(kept), ref[torch.from_numpy(kept)])
                    for kept in (held, sample)
                    if len(kept)
                )
                # Similarity profiles (softmax over the concepts, else over the sampled rows)
                # are kept for the sampled rows outside the contested classes.
                kl_rows = sample[~contested[pick]]
                landmarks = relation if len(relation) else sampled
                if len(kl_rows) and len(landmarks):
                    preserve = preserve + losses.relation_preservation_loss(
                        at(kl_rows),
                        ref[torch.from_numpy(kl_rows)],
                        at(landmarks),
                        ref[torch.from_numpy(landmarks)],
                        self.temperature,
                    )
                loss = loss + self.preserve_weight_ * preserve
            if not torch.isfinite(loss):
                raise ValueError(
                    f"tuning diverged at step {step + 1} (the loss is {float(loss)}); "
                    f"lower learning_rate (was {self.learning_rate_:g})"
                )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            self.loss_history_.append(float(loss.detach()))
            tuning(step + 1, self.steps_)  # every step: a cancel waits for at most one

        self.embeddings_ = self._embed_all(embedder, n, end_share)
        if not (np.isfinite(self.embeddings_).all() and self.embeddings_.any(axis=1).all()):
            raise ValueError(
                "the tuned encoder gives non-finite or zero embeddings; lower learning_rate "
                f"(was {self.learning_rate_:g})"
            )
        self.state_ = self._final_state(state, embedder)
        self.seconds_ = time.perf_counter() - start

    # -- pieces --------------------------------------------------------------------------
    def _intent_loss(
        self,
        intent: IndexedIntent,
        at: Callable[[np.ndarray], torch.Tensor],
        negatives: dict[str, np.ndarray],
        is_image: np.ndarray,
    ) -> torch.Tensor:
        if intent.kind == "point-set":
            point = at(np.array([intent.point]))[0]
            target = at(intent.target[intent.target != intent.point])
            negative_sets = []
            if len(intent.avoid):
                negative_sets.append(intent.avoid)
            if _joins_concepts(intent, self._concepts):
                # Joining a concept (e.g. a class's prompts) means beating every other
                # concept, as zero-shot classification does; the avoid set gets its own term.
                negative_sets.append(
                    np.setdiff1d(self._concepts, np.append(intent.target, intent.point))
                )
            if not negative_sets:  # sampled rows of the target's modalities, outside it
                kinds = {"image" if is_image[r] else "text" for r in intent.target.tolist()}
                pool = np.concatenate([negatives[k] for k in sorted(kinds)])
                negative_sets.append(np.setdiff1d(pool, np.append(intent.target, intent.point)))
            terms = [
                losses.point_set_loss(point, target, at(neg), self.temperature)
                for neg in negative_sets
                if len(neg)
            ]
            return torch.stack(terms).mean() if terms else point.sum() * 0.0
        # Set-set terms act on centroids: contrasting members against "the rest" would push
        # them away from unlabelled positives (e.g. the other captions of the same photos).
        a, b = at(intent.a), at(intent.b)
        if intent.kind == "separate":
            return losses.set_separate_loss(a, b, self.separate_margin)
        return losses.set_align_loss(a, b)

    def _embedder(
        self,
        ref: torch.Tensor,
        image_mask: torch.Tensor,
        state: AlignmentState,
        encoder: Encoder | None,
        images: Callable[[], Sequence[Image.Image]] | None,
        texts: Sequence[str] | None,
    ) -> _AdapterRows | _TowerRows:
        if self.scope == "adapter":
            return _AdapterRows(ref, image_mask, self.adapter_rank)
        if encoder is None or images is None or texts is None:
            raise ValueError(
                f"scope {self.scope!r} tunes the encoder: pass encoder, images and texts"
            )
        if state.tower is not None and state.tower != self.scope:
            raise ValueError(
                f"the parent version tuned the towers with {state.tower!r}; a {self.scope!r} run "
                "cannot continue from it (undo to a version without tower tuning first)"
            )
        view = tuning_view(encoder)
        if self.scope == "lora":
            if state.lora is None:
                state.lora = inject_lora(view, self.lora_rank, self.lora_alpha)
            else:
                inject_lora(view, state.lora["r"], state.lora["lora_alpha"])
        load_tower_state(view, state.tower_tensors)
        state.tower = self.scope
        params = tower_parameters(view, self.scope)
        self._tower_names = list(params)
        if self.progress is not None:
            self.progress(0.0, "loading the images")
        image_list = images()
        if len(image_list) != int(image_mask.sum()) or len(texts) != int((~image_mask).sum()):
            raise ValueError("images and texts must match the image and text rows")
        prepared = view.image_inputs(image_list, self._phase(*_PREPARE_SPAN, "preparing images"))
        return _TowerRows(
            view,
            list(params.values()),
            prepared,
            view.text_inputs(texts),
            image_mask,
            state.adapter_modules(),
        )

    def _embed_all(
        self, embedder: _AdapterRows | _TowerRows, n: int, start_fraction: float
    ) -> np.ndarray:
        report = self._phase(start_fraction, 1.0, "re-embedding items")
        out = []
        with torch.no_grad():
            for start in range(0, n, EMBED_BATCH):
                report(start, n)
                rows = torch.arange(start, min(n, start + EMBED_BATCH))
                out.append(embedder.embed(rows))
        return torch.cat(out).numpy().astype(np.float32)

    def _phase(self, start: float, end: float, what: str) -> Callable[[int, int], None]:
        """``report(done, total)`` for a phase spanning ``[start, end]`` of the progress
        bar (it does nothing without a progress callback)."""
        progress = self.progress
        if progress is None:
            return lambda done, total: None
        return lambda done, total: progress(
            start + (end - start) * done / total, f"{what} {done}/{total}"
        )

    def _final_state(
        self, state: AlignmentState, embedder: _AdapterRows | _TowerRows
    ) -> AlignmentState:
        if isinstance(embedder, _AdapterRows):
            adapters = {k: v.detach().clone() for k, v in embedder.adapters.state_dict().items()}
            state.adapters = [*state.adapters, adapters]
        else:
            named = dict(embedder.view.root.named_parameters())
            state.tower_tensors = {k: named[k].detach().clone() for k in self._tower_names}
        return state


def _joins_concepts(intent: IndexedIntent, concepts: np.ndarray) -> bool:
    """Whether ``intent`` moves a point toward concept texts (e.g. a class's prompts)."""
    return (
        intent.kind == "point-set"
        and len(concepts) > 0
        and bool(np.isin(intent.target, concepts).all())
    )


def _row_getter(rows: np.ndarray, z: torch.Tensor) -> Callable[[np.ndarray], torch.Tensor]:
    """``at(idx)``: the rows ``idx`` of ``z``, whose row ``i`` embeds ``rows[i]`` (sorted)."""

    def at(idx: np.ndarray) -> torch.Tensor:
        pos = np.searchsorted(rows, idx)
        if len(idx) and (pos.max() >= len(rows) or not np.array_equal(rows[pos], idx)):
            raise AssertionError("a loss term asked for rows that were not embedded this step")
        return z[torch.from_numpy(pos)]

    return at


def index_intents(intents: Sequence[Any], row_of: dict[str, int]) -> list[IndexedIntent]:
    """Turn resolved intents (set references already item ids) into row indices."""
    from modalchorus.align.intents import PointSet

    def rows(ids: Sequence[str] | None) -> np.ndarray:
        return np.array([row_of[i] for i in ids or ()], np.int64)

    out = []
    for intent in intents:
        if isinstance(intent, PointSet):
            out.append(
                IndexedIntent(
                    "point-set",
                    intent.strength,
                    point=row_of[intent.point],
                    target=rows(intent.target),
                    avoid=rows(intent.avoid),
                )
            )
        else:
            out.append(
                IndexedIntent(intent.mode, intent.strength, a=rows(intent.a), b=rows(intent.b))
            )
    return out
