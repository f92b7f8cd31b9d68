r"""The Modal Fusion Map (MFM): a parametric joint 2-D map of image and text embeddings.

See :class:`ModalFusionMap` for the formulation and the chosen defaults, and DESIGN §5.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from modalchorus.estimator import UnsupervisedEstimator
from modalchorus.projection.baselines import landmark_sample
from modalchorus.projection.distances import (
    NORMALISATIONS,
    BlockNormaliser,
    fit_block_normaliser,
)
from modalchorus.projection.networks import MLPSpec
from modalchorus.projection.objective import (
    BLOCK_NAMES,
    TorchNormaliser,
    TrainState,
    batch_losses,
    cross_knn,
    intra_knn,
    pca_pretrain,
)
from modalchorus.projection.rank_refinement import rank_refinement_loss, rank_table
from modalchorus.projection.sampling import (
    BatchSampler,
    calibrate_bandwidths,
    sample_block_pairs,
)
from modalchorus.projection.validation import (
    check_modalities,
    check_nonzero_rows,
    check_random_state,
    check_real_dtype,
    nonfinite_message,
)

__all__ = ["MODALITIES", "ModalFusionMap", "NotFittedError", "UnsignedSaveWarning"]

logger = logging.getLogger(__name__)

#: Accepted values of ``modality``.
MODALITIES = ("image", "text")
#: Accepted values of ``nonmetric``.
NONMETRIC_FORMS = ("listwise", "triplet")
#: Accepted values of ``anchor_sampling`` and ``lr_schedule``.
ANCHOR_SAMPLINGS = ("proportional", "balanced")
LR_SCHEDULES = ("linear", "constant")
#: Largest ``batch_size``: the refinement scores each anchor against every training point
#: of a modality, so its memory grows with ``batch_size`` times the training points.
MAX_BATCH_SIZE = 4096
#: Training points from which ``"auto"`` gives the full step budgets (both benchmark
#: datasets are at or above it).
AUTO_FULL_POINTS = 2_000
#: File names written by :meth:`ModalFusionMap.save` into its folder.
WEIGHTS_FILE, CONFIG_FILE = "mfm.safetensors", "mfm.json"
#: Key of the ``mfm.safetensors`` metadata entry holding the SHA-256 of ``mfm.json``.
CONFIG_DIGEST_KEY = "mfm_json_sha256"
_FORMAT_VERSION = 1

Callback = Callable[[int, float, "ModalFusionMap"], bool | None]


def auto_schedule(n_points: int) -> tuple[int, int]:
    """Step budgets of the two training phases for ``n_points`` training points.

    600 first-phase and 250 refinement steps from :data:`AUTO_FULL_POINTS` points up; in
    proportion below, with floors of 250 and 80 steps. A step draws ``batch_size`` anchors
    whatever the input size, so a small input is seen many times over in fewer steps.

    Parameters
    ----------
    n_points : int
        Images plus texts the network is trained on.

    Returns
    -------
    max_iter, refine_iter : int
    """
    scale = min(1.0, n_points / AUTO_FULL_POINTS)
    return max(250, round(600 * scale)), max(80, round(250 * scale))


def neighbours_for(n_image: int, n_text: int, default: int = 15) -> int:
    """``n_neighbors`` for a dataset: ``default``, capped so that each modality has more
    points than that (a small dataset's k-NN candidate lists cannot be longer).

    Parameters
    ----------
    n_image, n_text : int
        Points per modality.
    default : int
        The value used when both modalities are large enough.

    Returns
    -------
    int
        ``max(1, min(default, n_image - 1, n_text - 1))``.
    """
    return max(1, min(default, n_image - 1, n_text - 1))


class NotFittedError(ValueError, AttributeError):
    """Raised when a :class:`ModalFusionMap` is used before :meth:`~ModalFusionMap.fit`.

    Subclasses ``ValueError`` and ``AttributeError``, like scikit-learn's ``NotFittedError``.
    """


class UnsignedSaveWarning(UserWarning):
    """A save from before saves recorded ``mfm.json``'s digest: an edit cannot be detected."""


class ModalFusionMap(UnsupervisedEstimator):
    r"""Parametric joint 2-D projection of image and text embeddings (Modal Fusion Map).

    A network ``f_theta: R^d -> R^2`` (one for both modalities) is trained so that the
    merged image+text geometry survives in 2-D:

    1. **Merged distances.** Cosine distances between the (L2-normalised) embeddings,
       normalised per block ``II``, ``TT``, ``IT`` (:mod:`~modalchorus.projection.distances`)
       with maps fitted on random pairs of each block. This removes the modality gap:
       "close" means the same for a cross-modal and an intra-modal pair.
    2. **Metric term** ``L_metric = 1 - pearson(D~, D^)`` over the pairs of a batch (every
       other batch row against all columns: all pair types, half the cost;
       :func:`~modalchorus.projection.losses.pearson_loss`): global arrangement.
    3. **Nonmetric (cross-modal rank) term**: for every image of a batch, the rank order of
       its distances to the batch's texts, and for every text, to the batch's images.
       ``"listwise"``: ``KL(p_i || q_i)`` between ``p_i = softmax(-D~_i / sigma_i)`` and a
       Student-t layout distribution (:func:`~modalchorus.projection.losses.listwise_kl_loss`);
       plus ``beta KL(q_i || p_i)`` (``beta = precision_weight``), the precision side of
       NeRV (Venna et al., 2010), which penalises false cross-modal neighbours;
       ``"triplet"``: hinge on sampled (anchor, nearer, farther) triples.
       ``sigma_i`` is calibrated once per point on its cross-modal k-NN list to
       ``perplexity``.
    4. **Intra-modal neighbourhood term**: the same listwise loss over the same-modality
       candidates of each batch point (keeps each modality's own neighbourhoods readable).
    5. **Total** ``L = w_m L_metric + lambda L_nonmetric + mu L_intra`` with
       ``w_m = metric_weight``, ``lambda = nonmetric_weight``, ``mu = intra_weight``.
    6. **Refinement** (``refine_iter`` steps; 0 skips it): a second phase fine-tunes the
       network on smoothed k-NN trustworthiness and continuity themselves, for the four
       relations (:mod:`~modalchorus.projection.rank_refinement`).

    Training draws mini-batches of ``batch_size`` anchors (``anchor_sampling``), each
    with one of its cross-modal and one of its intra-modal k nearest neighbours (k-NN lists
    computed once, blockwise), and computes every distance inside the batch from the
    embeddings: memory never grows with ``(N + M)^2``. Inputs larger than
    ``max_fit_points`` are fitted on a stratified sample and then all points are placed by
    :meth:`transform`. Adam with a step size decaying linearly to 0 (``lr_schedule``);
    early stopping when the loss (averaged over ``eval_every`` steps) has not improved by
    a relative ``tol`` for ``patience`` evaluations; the best weights are kept.

    The network sees each modality's embeddings centred on that modality's mean (fitted
    attribute ``modality_means_``), which moves the two cones onto each other before the
    first layer; :meth:`transform` needs the ``modality`` for the same reason.

    Defaults, and why
    -----------------
    Chosen on ``benchmarks/bench_projection.py --ablation`` (pocket encoder; Flickr8k 1k =
    1,000 images + 5,000 captions; CIFAR-10 2k = 2,000 images + 80 class prompts; k = 10;
    one factor changed at a time; full table in ``benchmarks/RESULTS.md``, "Projection
    quality"). Inter-modal T / C, Flickr | CIFAR; the defaults give
    0.955 / 0.940 | 0.965 / 0.958 (intra-modal T images / texts 0.966 / 0.955 | 0.938 /
    0.978). The first-phase figures below were measured without refinement and with 1,000
    steps (0.953 / 0.941 | 0.963 / 0.956); differences under ~0.005 are seed noise:

    * ``nonmetric="listwise"`` over ``"triplet"`` (0.883 / 0.911 | 0.873 / 0.909): the
      listwise KL sees every candidate of an anchor at once and its targets carry the whole
      rank order, the triplet hinge only sampled pairs of it.
    * ``precision_weight=0.1``: the reverse KL lifts trustworthiness for a little
      continuity (0: 0.940 / 0.945 | 0.960 / 0.956; 0.2: 0.959 / 0.938 | 0.965 / 0.956),
      and Flickr's intra-modal T with it (images 0.941 -> 0.948, texts 0.920 -> 0.930).
    * ``cross_dof=3``: the cross-modal kernel's tail trades T for C (Flickr 1: 0.939 /
      0.929, 2: 0.954 / 0.935, 5: 0.947 / 0.945); 3 keeps both high on both datasets.
      The intra-modal kernel stays Cauchy (``dof=1``).
    * ``normalisation="zscore"``: minmax ties (0.954 / 0.941 | 0.968 / 0.954) but lets one
      extreme pair set a block's scale; quantile trades C for T on Flickr (0.963 / 0.936)
      and is twice as slow.
    * ``lr_schedule="linear"``: decaying the step size to 0 settles fine detail (constant:
      0.946 / 0.941 | 0.952 / 0.950, intra-modal T lower on both).
    * ``anchor_sampling="proportional"``: every point is an anchor equally often. Balanced
      anchors tie on Flickr but draw CIFAR's 80 prompts ~12x more often than an image,
      which pulls the images into tight clusters (image T 0.881 vs 0.889).
    * ``nonmetric_weight=1`` and ``intra_weight=1``: lambda 0.3 trades inter-modal C for
      intra-modal T; without the intra-modal term CIFAR's image T falls to 0.816 and
      Flickr's text T to 0.914, so maps read worse inside each modality.
    * ``metric_weight=0.3``: 0 and 1 are within noise on every number; the term keeps the
      global arrangement (it raised continuity by ~0.02 in free-coordinate sweeps) at
      little cost.
    * ``hidden=(128, 128)``, ``batch_size=256``, ``learning_rate=0.03``: (256, 256) or 384
      anchors gain at most 0.005 T on Flickr, lose on CIFAR and cost 1.2-2x the fit time;
      the (128, 128) net places ~3.6 x 10^5 points/s on one core.
    * ``activation="relu"``: GELU raises Flickr's T by ~0.007 (C by ~0.001) and ties on
      CIFAR, but fits take 1.2-1.3x as long on the CPU.
    * ``init="pca"``: same quality as ``"random"`` within noise, and a deterministic,
      gap-free starting frame for 50 cheap steps.
    * ``max_iter="auto"``, ``refine_iter="auto"``: 600 + 250 steps from 2,000 training
      points, fewer below (:func:`auto_schedule`). The refinement lifts the intra-modal T that
      the first phase leaves short (1,000 steps alone: Flickr texts 0.929, CIFAR images
      0.889; t-SNE: 0.980, 0.963), and 600 + 250 steps fit Flickr in 30 s, under UMAP's
      37 s. 1,000 + 300 steps reach the same quality (CIFAR image T 0.935 either way) in
      ~1.4x the time; 500 + 150 leave Flickr text T at 0.944. ``refine_iter=0`` gives the
      faster, first-phase-only map. Small inputs need fewer steps: on coco-mini (954
      points, 3 seeds) 286 + 119 steps give 0.958 / 0.955 in 6.9 s against 0.959 / 0.956
      in 16.8 s; on 360 points 250 + 80 steps give 0.953 / 0.945 in 3.2 s against
      0.955 / 0.950 in 11.5 s.
    * ``refine_learning_rate=0.01``, ``refine_trust_weight=0.1``, ``refine_intra_weight=1``:
      the best of a small sweep on both datasets (a step size of 0.02 lowered Flickr text
      T, 0.944 -> 0.936 at 500 + 150 steps). ``refine_intra_trust_weight=0.3`` (0.1
      before) buys the intra-modal targets a margin: CIFAR image T 0.930-0.935 across seeds
      at 0.1, 0.935-0.941 at 0.3; in the ablation run it costs Flickr 0.006 inter-modal T
      and 0.003 C (0.961 / 0.943 at 0.1).

    Parameters
    ----------
    n_components : int
        Output dimension (2 for a map).
    normalisation : {"minmax", "zscore", "quantile"}
        Per-block normalisation of the merged distance matrix.
    nonmetric : {"listwise", "triplet"}
        Form of the cross-modal rank term.
    nonmetric_weight : float
        ``lambda``.
    intra_weight : float
        ``mu``, weight of the intra-modal neighbourhood term (0 disables it).
    metric_weight : float
        ``w_m``, weight of the metric term.
    n_neighbors : int
        Length of the k-NN lists (cross- and intra-modal) that batches draw neighbours from
        and bandwidths are calibrated on. Each modality needs more than ``n_neighbors``
        points.
    perplexity : float or "auto"
        Target perplexity of ``p_i`` over the k-NN list; ``"auto"``: ``n_neighbors / 3``
        (resolved value in ``perplexity_``).
    dof : float
        Degrees of freedom of the layout's Student-t kernel in the intra-modal term
        (1 = Cauchy, as t-SNE).
    cross_dof : float
        Degrees of freedom of the kernel in the cross-modal listwise term.
    precision_weight : float
        Weight ``beta`` of the reverse divergence ``KL(q_i || p_i)`` added to the cross-modal
        listwise term (NeRV's precision term: it penalises layout neighbours that are not
        high-dimensional neighbours, i.e. it buys trustworthiness; 0 disables it).
    network : torch.nn.Module, optional
        Any module mapping ``(b, d)`` float32 to ``(b, n_components)``; a copy is trained
        (the passed module is left untouched). Default: an MLP built at fit time.
    hidden : tuple of int
        Hidden widths of the default MLP.
    activation : str
        Activation of the default MLP (see :data:`~modalchorus.projection.networks.ACTIVATIONS`).
    batch_size : int
        Anchors per batch (a batch holds up to 3x as many points), at most
        :data:`MAX_BATCH_SIZE`.
    anchor_sampling : {"proportional", "balanced"}
        ``"proportional"``: anchors drawn uniformly over all training points (each point
        is an anchor equally often); ``"balanced"``: half images, half texts.
    learning_rate : float
        Adam step size (the initial one under ``lr_schedule="linear"``).
    lr_schedule : {"linear", "constant"}
        ``"linear"``: the step size decays linearly to 0 at ``max_iter``.
    max_iter : int or "auto"
        Maximum number of optimisation steps; ``"auto"``: :func:`auto_schedule`.
    refine_iter : int or "auto"
        Steps of a second phase (0 skips it) that fine-tunes the network on smoothed
        ``refine_k``-NN trustworthiness and continuity themselves
        (:mod:`~modalchorus.projection.rank_refinement`): ``batch_size`` anchors per
        relation and step, each scored against the whole training set of the other side.
        It raises inter- and intra-modal quality past what the first phase reaches, at
        ~0.08 s a step on Flickr8k 1k (6,000 points, 2 cores); see
        ``benchmarks/RESULTS.md``.
    refine_k : int
        Neighbourhood size the refinement scores.
    refine_learning_rate : float
        Initial Adam step size of the refinement (decays linearly to 0).
    refine_trust_weight : float
        Weight of the trustworthiness (intruder) term against the continuity one, in the
        cross-modal relations.
    refine_intra_trust_weight : float
        The same weight in the intra-modal relations, where trustworthiness is what the
        quality targets ask for.
    refine_intra_weight : float
        Weight of the intra-modal relations against the cross-modal ones.
    eval_every : int
        Steps per loss average (one early-stopping check, one log line, one callback).
    patience : int
        Early stopping: evaluations without relative improvement ``> tol``.
    tol : float
        Relative improvement of the averaged loss that counts.
    init : {"pca", "random"}
        ``"pca"``: first regress the network onto the top two principal components of the
        modality-centred inputs (a stable, gap-free start); ``"random"``: start from the
        network's random initialisation.
    init_steps : int
        Steps of the ``"pca"`` regression.
    max_fit_points : int
        Fit on a stratified sample of this many points when ``N + M`` is larger.
    n_pairs_normaliser : int
        Random pairs per block to fit the block normalisation on.
    transform_chunk_size : int
        Rows per forward pass in :meth:`transform`.
    device : str
        ``"cpu"``, ``"cuda"``, ... or ``"auto"`` (CUDA when available; resolved in
        ``device_``).
    n_threads : int or "auto"
        CPU threads torch uses inside :meth:`fit` and :meth:`transform` (set for the call,
        restored afterwards). ``"auto"``: torch's own setting (one thread per core unless
        changed). On the 2-core benchmark machine two threads were faster than one
        (2026-11-30): 300 first-phase steps in 6.3-7.7 s instead of 9.3 s, a refinement step
        in 0.08 s instead of 0.14 s, ``transform`` at 4.2-5.7 x 10^5 instead of 3.4 x 10^5
        points/s. On a machine busy with other work, 1 can be faster.
    random_state : int or None
        Seed of every random choice (network init, sampling, batches) via local generators;
        the global seeds are never touched. The same seed gives the same map on the same
        device and thread count.
    verbose : bool
        Log progress at INFO (else DEBUG) on the ``modalchorus.projection.mfm`` logger.
    callback : callable, optional
        ``callback(step, mean_loss, estimator)`` after every evaluation; returning ``True``
        stops fitting (the weights so far are kept, the best ones in the first phase; a
        stop there skips the refinement).

    Attributes
    ----------
    embedding_image_ : numpy.ndarray, shape (n, n_components)
    embedding_text_ : numpy.ndarray, shape (m, n_components)
    loss_history_ : list of dict
        One entry per evaluation: ``step``, ``loss`` and the mean of each term; entries of
        the refinement phase follow, numbered on, with ``refine_missed``.
    network_ : torch.nn.Module
        The trained network (best weights, then refined when ``refine_iter > 0``).
    normaliser_ : BlockNormaliser
    modality_means_ : dict
        ``{"image": (d,), "text": (d,)}`` float32 centring vectors.
    perplexity_ : float
    device_ : torch.device
    n_features_in_ : int
    n_components_ : int
        Width of the fitted layout (what :meth:`transform` returns).
    n_iter_ : int
        Steps run.
    best_step_ : int
        Step whose weights were kept.
    refine_iter_ : int
        Refinement steps run (their weights are kept; 0 without refinement).
    schedule_ : dict
        ``{"max_iter": int, "refine_iter": int}``: the step budgets used (``"auto"``
        resolved).
    fit_indices_ : dict
        ``{"image": (n_fit_image,), "text": (n_fit_text,)}`` rows the network was trained on
        (absent when loaded from a save written before saves kept it).
    fit_seconds_ : float
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        normalisation: str = "zscore",
        nonmetric: str = "listwise",
        nonmetric_weight: float = 1.0,
        intra_weight: float = 1.0,
        metric_weight: float = 0.3,
        n_neighbors: int = 15,
        perplexity: float | str = "auto",
        dof: float = 1.0,
        cross_dof: float = 3.0,
        precision_weight: float = 0.1,
        network: nn.Module | None = None,
        hidden: tuple[int, ...] = (128, 128),
        activation: str = "relu",
        batch_size: int = 256,
        anchor_sampling: str = "proportional",
        learning_rate: float = 0.03,
        lr_schedule: str = "linear",
        max_iter: int | str = "auto",
        refine_iter: int | str = "auto",
        refine_k: int = 10,
        refine_learning_rate: float = 0.01,
        refine_trust_weight: float = 0.1,
        refine_intra_trust_weight: float = 0.3,
        refine_intra_weight: float = 1.0,
        eval_every: int = 50,
        patience: int = 4,
        tol: float = 2e-3,
        init: str = "pca",
        init_steps: int = 50,
        max_fit_points: int = 20_000,
        n_pairs_normaliser: int = 200_000,
        transform_chunk_size: int = 65_536,
        device: str = "cpu",
        n_threads: int | str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
        callback: Callback | None = None,
    ) -> None:
        self.n_components = n_components
        self.normalisation = normalisation
        self.nonmetric = nonmetric
        self.nonmetric_weight = nonmetric_weight
        self.intra_weight = intra_weight
        self.metric_weight = metric_weight
        self.n_neighbors = n_neighbors
        self.perplexity = perplexity
        self.dof = dof
        self.cross_dof = cross_dof
        self.precision_weight = precision_weight
        self.network = network
        self.hidden = hidden
        self.activation = activation
        self.batch_size = batch_size
        self.anchor_sampling = anchor_sampling
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.max_iter = max_iter
        self.refine_iter = refine_iter
        self.refine_k = refine_k
        self.refine_learning_rate = refine_learning_rate
        self.refine_trust_weight = refine_trust_weight
        self.refine_intra_trust_weight = refine_intra_trust_weight
        self.refine_intra_weight = refine_intra_weight
        self.eval_every = eval_every
        self.patience = patience
        self.tol = tol
        self.init = init
        self.init_steps = init_steps
        self.max_fit_points = max_fit_points
        self.n_pairs_normaliser = n_pairs_normaliser
        self.transform_chunk_size = transform_chunk_size
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------------ sklearn-style API

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> ModalFusionMap:
        """Set constructor parameters; unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"unknown parameter {name!r}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{n}={v!r}"
            for n, v in self.get_params().items()
            if n != "network" and not _same(v, defaults.get(n))
        ]
        if self.network is not None:
            changed.append(f"network={type(self.network).__name__}(...)")
        return f"{type(self).__name__}({', '.join(changed)})"

    # --------------------------------------------------------------------------- fit

    def fit(self, X_image: ArrayLike, X_text: ArrayLike) -> ModalFusionMap:
        """Train the map on image and text embeddings.

        Parameters
        ----------
        X_image : array_like, shape (n, d)
            Image embeddings (any scale: rows are L2-normalised). Bool, integer or real
            floating; cast to float32.
        X_text : array_like, shape (m, d)
            Text embeddings in the same space.

        Returns
        -------
        ModalFusionMap
            ``self``, fitted.

        Raises
        ------
        ValueError
            On invalid parameters, another dtype (object, string, complex), mismatched
            dimensions, NaN/inf, values beyond float32's range or all-zero rows, or a
            modality with fewer than ``n_neighbors + 1`` points.
        """
        start_time = time.perf_counter()
        self._check_params()
        threads = None if self.n_threads == "auto" else int(self.n_threads)
        try:
            with _torch_threads(threads):
                self._fit(X_image, X_text)
        except BaseException:
            self._forget_fit()  # a failed refit must not leave a half-updated map
            raise
        self.fit_seconds_ = time.perf_counter() - start_time
        log = logger.info if self.verbose else logger.debug
        log(
            "MFM: fitted in %.2f s (%d steps, best at %d)",
            self.fit_seconds_,
            self.n_iter_,
            self.best_step_,
        )
        return self

    def _fit(self, X_image: ArrayLike, X_text: ArrayLike) -> None:
        XI, XT = _prepare_inputs(X_image, X_text)
        k = int(self.n_neighbors)
        for name, X in (("X_image", XI), ("X_text", XT)):
            if X.shape[0] < k + 1:
                raise ValueError(
                    f"{name} has {X.shape[0]} points: n_neighbors={k} needs at least "
                    f"{k + 1} points of each modality"
                )
        rng = np.random.default_rng(self.random_state)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        self.device_ = _resolve_device(self.device)
        self.n_features_in_ = XI.shape[1]
        self.n_components_ = int(self.n_components)
        self.perplexity_ = (
            max(2.0, k / 3.0) if self.perplexity == "auto" else float(self.perplexity)
        )

        # -- training sample ------------------------------------------------------------
        n, m = XI.shape[0], XT.shape[0]
        rows = landmark_sample(n, m, int(self.max_fit_points), rng)
        img_rows, txt_rows = rows[rows < n], rows[rows >= n] - n
        if img_rows.size < k + 1 or txt_rows.size < k + 1:
            raise ValueError(
                f"max_fit_points={self.max_fit_points} leaves too few points of one modality "
                f"({img_rows.size} images, {txt_rows.size} texts) for n_neighbors={k}"
            )
        self.fit_indices_ = {"image": img_rows, "text": txt_rows}
        FI, FT = XI[img_rows], XT[txt_rows]
        nf, mf = FI.shape[0], FT.shape[0]
        auto_iter, auto_refine = auto_schedule(nf + mf)
        self.schedule_ = {
            "max_iter": auto_iter if self.max_iter == "auto" else int(self.max_iter),
            "refine_iter": auto_refine if self.refine_iter == "auto" else int(self.refine_iter),
        }
        log = logger.info if self.verbose else logger.debug
        log("MFM: fitting on %d images + %d texts (of %d + %d), d=%d", nf, mf, n, m, XI.shape[1])

        # -- normalisation, neighbours, bandwidths ----------------------------------------
        pairs = sample_block_pairs(FI, FT, int(self.n_pairs_normaliser), rng)
        self.normaliser_ = fit_block_normaliser(pairs, self.normalisation)
        self.modality_means_ = {"image": FI.mean(axis=0), "text": FT.mean(axis=0)}
        centred = np.concatenate(
            [FI - self.modality_means_["image"], FT - self.modality_means_["text"]]
        )
        self.input_scale_ = float(1.0 / max(np.sqrt((centred**2).sum(1).mean()), 1e-12))
        cross, cross_d = cross_knn(FI, FT, k)
        intra, intra_d = intra_knn(FI, FT, k)
        cross_dn = np.concatenate(
            [
                self.normaliser_.transform(cross_d[:nf], "IT"),
                self.normaliser_.transform(cross_d[nf:], "IT"),
            ]
        )
        intra_dn = np.concatenate(
            [
                self.normaliser_.transform(intra_d[:nf], "II"),
                self.normaliser_.transform(intra_d[nf:], "TT"),
            ]
        )
        sigma_cross = calibrate_bandwidths(cross_dn, self.perplexity_)
        sigma_intra = calibrate_bandwidths(intra_dn, self.perplexity_)

        # -- network --------------------------------------------------------------------
        dev = self.device_
        net = self._build_network(XI.shape[1], gen).to(dev)
        X_t = torch.as_tensor(np.concatenate([FI, FT]), dtype=torch.float32, device=dev)
        Z_t = torch.as_tensor(centred * self.input_scale_, dtype=torch.float32, device=dev)
        del centred
        state = TrainState(
            X=X_t,
            Z=Z_t,
            n_image=nf,
            sigma_cross=torch.as_tensor(sigma_cross, dtype=torch.float32, device=dev),
            sigma_intra=torch.as_tensor(sigma_intra, dtype=torch.float32, device=dev),
            normaliser=TorchNormaliser(self.normaliser_, dev),
        )
        self.init_ = self.init
        if self.init == "pca":
            pca_pretrain(net, Z_t, int(self.init_steps), gen, float(self.learning_rate))
        sampler = BatchSampler(
            nf,
            mf,
            cross,
            intra if self.intra_weight > 0 else None,
            int(self.batch_size),
            gen,
            image_fraction=0.5 if self.anchor_sampling == "balanced" else nf / (nf + mf),
        )
        self.network_ = net
        stopped = self._train(state, sampler, gen, log)
        self.refine_iter_ = 0
        if self.schedule_["refine_iter"] > 0 and not stopped:
            self._refine(state, gen, log)

        # -- place everything ---------------------------------------------------------------
        self.embedding_image_ = self.transform(XI, "image")
        self.embedding_text_ = self.transform(XT, "text")

    def fit_transform(self, X_image: ArrayLike, X_text: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Fit, then return ``(embedding_image_, embedding_text_)``."""
        self.fit(X_image, X_text)
        return self.embedding_image_, self.embedding_text_

    def _check_params(self) -> None:
        check_random_state(self.random_state)
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(
                f"unknown normalisation {self.normalisation!r}: use one of {NORMALISATIONS}"
            )
        if self.nonmetric not in NONMETRIC_FORMS:
            raise ValueError(f"unknown nonmetric {self.nonmetric!r}: use one of {NONMETRIC_FORMS}")
        for name, allowed in (
            ("anchor_sampling", ANCHOR_SAMPLINGS),
            ("lr_schedule", LR_SCHEDULES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}: use one of {allowed}")
        if self.init not in ("pca", "random"):
            raise ValueError(f"unknown init {self.init!r}: use 'pca' or 'random'")
        if self.n_threads != "auto" and (
            isinstance(self.n_threads, bool)
            or not isinstance(self.n_threads, int | np.integer)
            or self.n_threads < 1
        ):
            raise ValueError(f"n_threads must be 'auto' or an integer >= 1, got {self.n_threads!r}")
        ints = {
            "n_components": 1,
            "n_neighbors": 2,
            "batch_size": 4,
            "refine_k": 1,
            "eval_every": 1,
            "patience": 1,
            "init_steps": 0,
            "max_fit_points": 4,
            "n_pairs_normaliser": 10,
            "transform_chunk_size": 1,
        }
        for name, low in (("max_iter", 1), ("refine_iter", 0)):
            v = getattr(self, name)
            if isinstance(v, str) and v == "auto":
                continue
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                raise ValueError(f"{name} must be 'auto' or an integer >= {low}, got {v!r}")
        for name, low in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if self.batch_size > MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be at most {MAX_BATCH_SIZE}, got {self.batch_size}")
        for name in (
            "nonmetric_weight",
            "intra_weight",
            "metric_weight",
            "precision_weight",
            "refine_trust_weight",
            "refine_intra_trust_weight",
            "refine_intra_weight",
            "tol",
        ):
            v = getattr(self, name)
            if not (_is_number(v) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.nonmetric_weight + self.intra_weight + self.metric_weight <= 0:
            raise ValueError("at least one of the loss weights must be > 0")
        for name in ("learning_rate", "refine_learning_rate", "dof", "cross_dof"):
            v = getattr(self, name)
            if not (_is_number(v) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if self.perplexity != "auto" and not (
            _is_number(self.perplexity) and 1 < self.perplexity < self.n_neighbors
        ):
            raise ValueError(
                f"perplexity must be 'auto' or a number in (1, n_neighbors={self.n_neighbors}),"
                f" got {self.perplexity!r}"
            )
        if self.network is not None and not isinstance(self.network, nn.Module):
            raise ValueError(f"network must be a torch.nn.Module, got {type(self.network)}")
        hidden = self.hidden
        sequence = isinstance(hidden, Iterable) and not isinstance(hidden, str | bytes)
        if not sequence or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h > 0 for h in hidden
        ):
            raise ValueError(f"hidden must be a sequence of layer widths >= 1, got {hidden!r}")
        if self.callback is not None and not callable(self.callback):
            raise ValueError("callback must be callable")

    def _build_network(self, in_dim: int, gen: torch.Generator) -> nn.Module:
        if self.network is not None:
            net = copy.deepcopy(self.network).float()
            self.network_spec_ = None
        else:
            spec = MLPSpec(
                in_dim, tuple(int(h) for h in self.hidden), int(self.n_components), self.activation
            )
            net = spec.build(gen)
            self.network_spec_ = spec
        with torch.no_grad():
            out = net(torch.zeros(2, in_dim))
        if tuple(out.shape) != (2, self.n_components):
            raise ValueError(
                f"network must map (batch, {in_dim}) to (batch, {self.n_components}); "
                f"it returned shape {tuple(out.shape)} for a batch of 2"
            )
        return net

    def _train(
        self,
        state: TrainState,
        sampler: BatchSampler,
        gen: torch.Generator,
        log: Callable[..., None],
    ) -> bool:
        """Run the first phase; return whether the callback stopped it."""
        net = self.network_
        opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        total = self.schedule_["max_iter"]
        weights = {
            "metric": float(self.metric_weight),
            "nonmetric": float(self.nonmetric_weight),
            "intra": float(self.intra_weight),
        }
        history: list[dict[str, float]] = []
        best_loss, best_step, stale = math.inf, 0, 0
        best_state = copy.deepcopy(net.state_dict())
        sums: dict[str, float] = {}
        net.train()
        step, stopped = 0, False

        for step in range(1, total + 1):
            idx = sampler().to(self.device_)
            terms = batch_losses(
                net,
                state,
                idx,
                weights,
                self.nonmetric,
                float(self.dof),
                float(self.cross_dof),
                float(self.precision_weight),
                gen,
            )
            loss = sum(weights[name] * value for name, value in terms.items())
            if self.lr_schedule == "linear":  # anneal to 0 at max_iter: fine detail settles last
                for group in opt.param_groups:
                    group["lr"] = float(self.learning_rate) * (1.0 - (step - 1) / total)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            if step % int(self.eval_every) and step != total:
                continue
            n_avg = step - (history[-1]["step"] if history else 0)
            entry = {"step": step, **{k: v / n_avg for k, v in sums.items()}}
            history.append(entry)
            sums = {}
            log(
                "MFM step %d: loss %.5f (%s)",
                step,
                entry["loss"],
                ", ".join(f"{k} {entry[k]:.4f}" for k in terms),
            )
            if entry["loss"] < best_loss - float(self.tol) * abs(best_loss):
                best_loss, best_step, stale = entry["loss"], step, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if entry["loss"] < best_loss:
                    best_loss, best_step = entry["loss"], step
                    best_state = copy.deepcopy(net.state_dict())
            self.loss_history_ = history
            stop = stale >= int(self.patience)
            if self.callback is not None and self.callback(step, entry["loss"], self):
                log("MFM: stopped by callback at step %d", step)
                stop = stopped = True
            if stop:
                break
        net.load_state_dict(best_state)
        net.eval()
        self.loss_history_ = history
        self.n_iter_ = step
        self.best_step_ = best_step
        return stopped

    def _refine(self, state: TrainState, gen: torch.Generator, log: Callable[..., None]) -> None:
        """Fine-tune the network on smoothed k-NN trustworthiness and continuity.

        Each step places every training point, then scores ``batch_size`` anchors per
        relation (image -> text and text -> image at weight 1; image -> image and
        text -> text at ``refine_intra_weight``) against the whole pool of the other side
        (:func:`~modalchorus.projection.rank_refinement.rank_refinement_loss`), with the
        high-dimensional ranks of each relation tabulated once
        (:func:`~modalchorus.projection.rank_refinement.rank_table`). A relation whose pool
        has at most ``2 refine_k`` other points is skipped. Adam, step size decaying
        linearly to 0; the last weights are kept.
        """
        net, k, nf = self.network_, int(self.refine_k), state.n_image
        parts = {"image": slice(0, nf), "text": slice(nf, None)}
        sizes = {"image": nf, "text": state.X.shape[0] - nf}
        cross, intra = float(self.refine_trust_weight), float(self.refine_intra_trust_weight)
        relations = [  # (anchors, pool, weight, trust weight)
            (a, b, w, t)
            for a, b, w, t in (
                ("image", "text", 1.0, cross),
                ("text", "image", 1.0, cross),
                ("image", "image", float(self.refine_intra_weight), intra),
                ("text", "text", float(self.refine_intra_weight), intra),
            )
            if w > 0 and sizes[b] - int(a == b) > 2 * k
        ]
        if not relations:
            log("MFM: refinement skipped: every modality is too small for refine_k=%d", k)
            return
        X = {m: state.X[part] for m, part in parts.items()}
        tables = {
            (a, b): rank_table(
                X[a],
                X[b],
                self_columns=torch.arange(sizes[a], device=self.device_) if a == b else None,
                exact=max(2 * k, 64),
            )
            for a, b, _, _ in relations
        }
        total, lr0 = self.schedule_["refine_iter"], float(self.refine_learning_rate)
        opt = torch.optim.Adam(net.parameters(), lr=lr0)
        history = self.loss_history_
        offset = history[-1]["step"]  # the first phase always logs its last step
        sums = {"loss": 0.0, "refine_missed": 0.0}
        net.train()
        for step in range(1, total + 1):
            for group in opt.param_groups:
                group["lr"] = lr0 * (1.0 - (step - 1) / total)
            Y = net(state.Z)
            loss = torch.zeros((), device=self.device_)
            for a, b, weight, trust_weight in relations:
                anchors = torch.randint(sizes[a], (int(self.batch_size),), generator=gen).to(
                    self.device_
                )
                term, missed = rank_refinement_loss(
                    Y[parts[a]][anchors],
                    Y[parts[b]],
                    X[a][anchors],
                    X[b],
                    k,
                    self_columns=anchors if a == b else None,
                    table=tables[a, b],
                    rows=anchors,
                    trust_weight=trust_weight,
                    generator=gen,
                )
                loss = loss + weight * term
                sums["refine_missed"] += weight * float(missed)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["loss"] += float(loss.detach())
            if step % int(self.eval_every) and step != total:
                continue
            n_avg = offset + step - history[-1]["step"]
            history.append({"step": offset + step, **{n: v / n_avg for n, v in sums.items()}})
            sums = dict.fromkeys(sums, 0.0)
            log("MFM refine step %d: loss %.5f", step, history[-1]["loss"])
            if self.callback is not None and self.callback(
                offset + step, history[-1]["loss"], self
            ):
                log("MFM: refinement stopped by callback at step %d", step)
                break
        net.eval()
        self.refine_iter_ = step

    # ---------------------------------------------------------------------- transform

    def transform(self, X: ArrayLike, modality: str = "image") -> np.ndarray:
        """Place points in the fitted map with one forward pass (streamed in chunks).

        Parameters
        ----------
        X : array_like, shape (p, d)
            Embeddings of one modality (any scale: rows are L2-normalised). The dtypes
            :meth:`fit` accepts: bool, integer or real floating, cast to float32.
        modality : {"image", "text"}

        Returns
        -------
        numpy.ndarray, shape (p, n_components), float64

        Raises
        ------
        NotFittedError
            Before :meth:`fit` (or :meth:`load`).
        ValueError
            Unknown modality, another dtype, wrong number of columns, NaN/inf, values beyond
            float32's range or all-zero rows (as :meth:`fit`, naming the first such row).
        """
        self._check_fitted()
        self._check_params()  # set_params after the fit (e.g. transform_chunk_size=0)
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}: use one of {MODALITIES}")
        arr = np.asarray(X)
        check_real_dtype(arr, "X")  # the dtypes fit accepts, with fit's messages
        if arr.ndim != 2:
            raise ValueError(f"X must be a 2-D array (n_samples, n_features), got {arr.shape}")
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {arr.shape[1]} features, but the map was fitted on {self.n_features_in_}"
            )
        # The fitted width: n_components set after the fit does not change the network
        out = np.empty((arr.shape[0], self.n_components_), dtype=np.float64)
        if arr.shape[0] == 0:
            return out
        net = self.network_
        net.eval()
        mean = torch.as_tensor(self.modality_means_[modality], dtype=torch.float32)
        scale = float(self.input_scale_)
        step = int(self.transform_chunk_size)
        threads = None if self.n_threads == "auto" else int(self.n_threads)
        with _torch_threads(threads), torch.inference_mode():
            fused = self._fused_first_layer(mean, scale)
            for start in range(0, arr.shape[0], step):
                source = arr[start : start + step]
                with np.errstate(over="ignore"):  # overflow is named by _rescale_rows
                    chunk = np.ascontiguousarray(source, dtype=np.float32)
                x = torch.from_numpy(chunk)
                norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
                bad = ~torch.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
                if bool(bad.any()):
                    x, norms = _rescale_rows(x, bad, source, start)
                if fused is not None:
                    # Default MLP: W1 ((x/|x| - mu) s) + b1 = (s/|x|) W1 x + (b1 - s W1 mu),
                    # one pass over the wide input instead of four.
                    weight, bias, rest = fused
                    h = torch.nn.functional.linear(x.to(self.device_), weight)
                    h = torch.addcmul(bias, h, (scale / norms).to(self.device_))
                    y = rest(h)
                else:
                    y = net(((x / norms - mean) * scale).to(self.device_))
                out[start : start + chunk.shape[0]] = y.float().cpu().numpy()
        return out

    def _fused_first_layer(
        self, mean: torch.Tensor, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor, nn.Module] | None:
        """``(W1, b1 - s W1 mu, layers after the first)`` of the default MLP, else ``None``."""
        net = self.network_
        if self.network_spec_ is None or not isinstance(net, nn.Sequential):
            return None
        first = net[0]
        if not isinstance(first, nn.Linear) or first.bias is None:
            return None
        weight = first.weight.detach()
        bias = first.bias.detach() - scale * (weight @ mean.to(weight.device))
        return weight, bias, net[1:]

    def __sklearn_is_fitted__(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run, for scikit-learn's
        ``check_is_fitted``."""
        return hasattr(self, "network_")

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    # ------------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> Path:
        """Save the fitted map to a folder: ``mfm.safetensors`` (tensors) + ``mfm.json``.

        No pickle: the weights, centring vectors, quantile knots and fitted embeddings are
        tensors; parameters, the normaliser's affine maps, the network architecture and the
        loss history are JSON. A custom ``network`` is saved by its ``state_dict`` only; pass
        an identically built module to :meth:`load`.

        The two files are tied together: ``mfm.json`` records the SHA-256 of
        ``mfm.safetensors`` (``weights_sha256``), and the safetensors metadata records the
        SHA-256 of ``mfm.json``'s canonical form (key ``mfm_json_sha256``; sorted keys, no
        whitespace, ``weights_sha256`` left out). :meth:`load` refuses a save whose files do
        not match, e.g. a hand-edited ``mfm.json`` (reformatting it is harmless).

        Returns
        -------
        pathlib.Path
            The folder.
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {
            f"network.{k}": v.detach().cpu().contiguous()
            for k, v in self.network_.state_dict().items()
        }
        for mod in MODALITIES:
            tensors[f"mean.{mod}"] = torch.as_tensor(self.modality_means_[mod]).contiguous()
        tensors["embedding.image"] = torch.as_tensor(self.embedding_image_)
        tensors["embedding.text"] = torch.as_tensor(self.embedding_text_)
        for mod, rows in self.fit_indices_.items():
            tensors[f"fit_indices.{mod}"] = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        for block, (xp, fp) in self.normaliser_.knots.items():
            tensors[f"knots.{block}.x"] = torch.as_tensor(np.asarray(xp, dtype=np.float64))
            tensors[f"knots.{block}.f"] = torch.as_tensor(np.asarray(fp, dtype=np.float64))
        params = {k: v for k, v in self.get_params().items() if k not in ("network", "callback")}
        params["hidden"] = list(params["hidden"])
        config = {
            "format": "modalchorus.ModalFusionMap",
            "version": _FORMAT_VERSION,
            "params": params,
            "custom_network": self.network_spec_ is None,
            "network_class": type(self.network_).__name__,
            "network_spec": None if self.network_spec_ is None else self.network_spec_.to_dict(),
            "normaliser": {
                "method": self.normaliser_.method,
                "affine": {b: list(v) for b, v in self.normaliser_.affine.items()},
            },
            "fitted": {
                "n_features_in": self.n_features_in_,
                "input_scale": self.input_scale_,
                "perplexity": self.perplexity_,
                "init": self.init_,
                "n_iter": self.n_iter_,
                "best_step": self.best_step_,
                "refine_iter": self.refine_iter_,
                "schedule": self.schedule_,
                "fit_seconds": getattr(self, "fit_seconds_", None),
                "device": str(self.device_),
                "loss_history": self.loss_history_,
            },
        }
        # Both files are complete before either replaces a previous save, and each holds the
        # other's digest: an interrupted, mixed or edited save can never load as a map.
        files = _encode_save(config, tensors)
        for name, data in files.items():
            (folder / f".{name}.tmp").write_bytes(data)
        for name in files:
            (folder / f".{name}.tmp").replace(folder / name)
        return folder

    @classmethod
    def load(
        cls, path: str | Path, network: nn.Module | None = None, device: str = "cpu"
    ) -> ModalFusionMap:
        """Load a map written by :meth:`save`.

        Parameters
        ----------
        path : str or pathlib.Path
            The folder.
        network : torch.nn.Module, optional
            Required when the map was fitted with a custom network: a module of the same
            architecture (its weights are replaced by the saved ones).
        device : str
            Where to put the network.

        Returns
        -------
        ModalFusionMap
            Fitted: :meth:`transform` gives the same output as the saved map's.

        Raises
        ------
        FileNotFoundError
            The folder lacks a file of the save.
        ValueError
            Not a saved map, a newer format, files that do not match (an edited ``mfm.json``
            or files from different or interrupted saves), a damaged save (naming what is
            wrong), or a custom-network map without ``network``.

        Warns
        -----
        UnsignedSaveWarning
            For a save written before saves recorded ``mfm.json``'s digest (it loads, but an
            edit to its ``mfm.json`` cannot be detected; saving it again adds the digest).
        """
        folder = Path(path)
        cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        if not cfg_path.is_file() or not w_path.is_file():
            raise FileNotFoundError(
                f"no saved ModalFusionMap in {folder} (needs {CONFIG_FILE} and {WEIGHTS_FILE})"
            )
        try:
            config, tensors = _read_save(cfg_path, w_path)
            return cls._from_save(folder, config, tensors, network, device)
        except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as exc:
            raise ValueError(f"{folder} holds a damaged ModalFusionMap save: {exc!r}") from exc

    @classmethod
    def _from_save(
        cls,
        folder: Path,
        config: dict[str, Any],
        tensors: dict[str, torch.Tensor],
        network: nn.Module | None,
        device: str,
    ) -> ModalFusionMap:
        params = dict(config["params"])
        params["hidden"] = tuple(params["hidden"])
        params["device"] = device
        est = cls(**params)
        est._check_params()  # a hand-edited mfm.json is refused like bad constructor arguments
        if config["custom_network"]:
            if network is None:
                raise ValueError(
                    f"the map in {folder} was fitted with a custom network "
                    f"({config['network_class']}); pass network=<module of that architecture>"
                )
            net = copy.deepcopy(network).float()
            est.network = network
            est.network_spec_ = None
        else:
            if network is not None:
                raise ValueError(
                    f"the map in {folder} was fitted with the default network; load it "
                    "without network="
                )
            spec = MLPSpec.from_dict(config["network_spec"])
            net = spec.build()
            est.network_spec_ = spec
        state = {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
        net.load_state_dict(state)
        est.device_ = _resolve_device(device)
        est.network_ = net.to(est.device_).eval()
        fitted = config["fitted"]
        est.n_features_in_ = int(fitted["n_features_in"])
        est.input_scale_ = float(fitted["input_scale"])
        if not (math.isfinite(est.input_scale_) and est.input_scale_ > 0):
            raise ValueError(f"{folder} holds a damaged save: input_scale {est.input_scale_!r}")
        est.perplexity_ = float(fitted["perplexity"])
        est.init_ = fitted["init"]
        est.n_iter_ = int(fitted["n_iter"])
        est.best_step_ = int(fitted["best_step"])
        est.refine_iter_ = int(fitted.get("refine_iter", 0))
        if "schedule" in fitted:  # saves made before "auto" lack it
            est.schedule_ = {k: int(v) for k, v in fitted["schedule"].items()}
        est.fit_seconds_ = fitted["fit_seconds"]
        est.loss_history_ = fitted["loss_history"]
        est.modality_means_ = {m: tensors[f"mean.{m}"].numpy() for m in MODALITIES}
        est.embedding_image_ = tensors["embedding.image"].numpy()
        est.embedding_text_ = tensors["embedding.text"].numpy()
        est.n_components_ = est.embedding_image_.shape[1]
        if "fit_indices.image" in tensors:  # saves made before they were kept lack them
            est.fit_indices_ = {m: tensors[f"fit_indices.{m}"].numpy() for m in MODALITIES}
        norm = config["normaliser"]
        if norm["method"] not in NORMALISATIONS:
            raise ValueError(f"{folder} holds a damaged save: normaliser {norm['method']!r}")
        knots = {
            b: (tensors[f"knots.{b}.x"].numpy(), tensors[f"knots.{b}.f"].numpy())
            for b in BLOCK_NAMES
            if f"knots.{b}.x" in tensors
        }
        est.normaliser_ = BlockNormaliser(
            norm["method"], affine={b: tuple(v) for b, v in norm["affine"].items()}, knots=knots
        )
        return est


# ------------------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    """A real number (NumPy scalars included), not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _json_scalar(value: Any) -> Any:
    """JSON form of NumPy scalars and arrays (parameters may be given as either)."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _config_digest(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a save's config, ``weights_sha256`` left out.

    Canonical: sorted keys, no whitespace, ASCII, so reformatting ``mfm.json`` keeps the
    digest and any change of a value does not. ``weights_sha256`` is left out because the
    digest is stored in the weights file that ``weights_sha256`` hashes.
    """
    body = {k: v for k, v in config.items() if k != "weights_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _encode_save(config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, bytes]:
    """The bytes of both files of a save, each recording the other's digest.

    Parameters
    ----------
    config : dict
        The ``mfm.json`` content (NumPy scalars allowed; ``weights_sha256`` is replaced).
    tensors : dict of str to torch.Tensor
        The ``mfm.safetensors`` content.

    Returns
    -------
    dict
        ``{WEIGHTS_FILE: bytes, CONFIG_FILE: bytes}``.
    """
    from safetensors.torch import save as save_tensors

    # Round-trip first: the digest must be of the values load() will read back.
    body = json.loads(json.dumps(config, default=_json_scalar))
    body.pop("weights_sha256", None)
    weights = save_tensors(tensors, metadata={CONFIG_DIGEST_KEY: _config_digest(body)})
    body["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    return {WEIGHTS_FILE: weights, CONFIG_FILE: json.dumps(body, indent=2).encode()}


def _weights_metadata(weights: bytes) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file already read by safetensors (so valid):
    an 8-byte little-endian header length, then the JSON header."""
    size = int.from_bytes(weights[:8], "little")
    metadata = json.loads(weights[8 : 8 + size]).get("__metadata__")
    return metadata if isinstance(metadata, dict) else {}


def _mismatch(cfg_path: Path, w_path: Path, why: str) -> ValueError:
    return ValueError(
        f"the saved files do not match: {cfg_path.name} and {w_path.name} in "
        f"{cfg_path.parent} were not written together ({why}); save the fitted map again"
    )


def _read_save(cfg_path: Path, w_path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config and tensors of a save, checked to belong together."""
    from safetensors.torch import load as load_tensors

    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{cfg_path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != "modalchorus.ModalFusionMap":
        raise ValueError(f"{cfg_path} is not a saved ModalFusionMap")
    version = config.get("version", 0)
    if not isinstance(version, int) or version > _FORMAT_VERSION:
        raise ValueError(
            f"{cfg_path} has format version {version!r}; this library reads up to {_FORMAT_VERSION}"
        )
    weights = w_path.read_bytes()
    digest = config.get("weights_sha256")
    if digest is not None and digest != hashlib.sha256(weights).hexdigest():
        why = "one was edited, or they come from different or interrupted saves"
        raise _mismatch(cfg_path, w_path, why)
    try:
        tensors = load_tensors(weights)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ValueError(f"{w_path} is not a valid safetensors file: {exc}") from None
    signed = _weights_metadata(weights).get(CONFIG_DIGEST_KEY)
    if signed is None:
        # Saves written before the digest: refusing them would strand every earlier map.
        warnings.warn(
            f"{cfg_path} was saved without an integrity check, so an edit to it cannot be "
            "detected; load and save the map again to add one",
            UnsignedSaveWarning,
            stacklevel=3,  # the caller of ModalFusionMap.load
        )
    elif digest is None or signed != _config_digest(config):
        raise _mismatch(cfg_path, w_path, f"{cfg_path.name} was edited, or is from another save")
    return config, tensors


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and the like
        return False


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous count."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != previous:
            torch.set_num_threads(previous)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available here; use 'cpu' or 'auto'")
    return resolved


def _prepare_inputs(X_image: ArrayLike, X_text: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated, L2-normalised float32 copies of both modalities."""
    XI, XT = check_modalities(X_image, X_text, dtype=np.float32)
    out = []
    for name, X in (("X_image", XI), ("X_text", XT)):
        check_nonzero_rows(X, name)
        norms = np.linalg.norm(X, axis=1)
        extreme = ~np.isfinite(norms) | (norms == 0)
        if extreme.any():  # the norm under- or overflowed float32: rescale those rows first
            X = X.copy()
            X[extreme] /= np.abs(X[extreme]).max(axis=1, keepdims=True)
            norms[extreme] = np.linalg.norm(X[extreme], axis=1)
        out.append(X / norms[:, None])
    return out[0], out[1]


def _rescale_rows(
    x: torch.Tensor, bad: torch.Tensor, source: np.ndarray, start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with the rows whose norm under- or overflowed scaled by their largest entry,
    and the new norms.

    Parameters
    ----------
    x : torch.Tensor, shape (c, d), float32
        A chunk of :meth:`ModalFusionMap.transform`'s input.
    bad : torch.Tensor, shape (c,), bool
        Rows whose norm is 0 or not finite.
    source : numpy.ndarray, shape (c, d)
        The chunk as given, before the cast to float32 (tells NaN/inf from overflow).
    start : int
        Input row of the chunk's first row, for messages.

    Raises
    ------
    ValueError
        For the first row that holds NaN/inf, values beyond float32's range, or only zeros.
    """
    rows = x[bad]
    peak = rows.abs().amax(dim=1, keepdim=True)
    broken = (peak[:, 0] == 0) | ~torch.isfinite(rows).all(dim=1)
    if bool(broken.any()):
        row = int(torch.nonzero(bad)[int(torch.nonzero(broken)[0, 0]), 0])
        where = np.array([start + row])
        if bool(torch.isfinite(x[row]).all()):
            what = f"X contains an all-zero row at row {start + row}"
        elif np.isfinite(source[row]).all():  # finite as given: only the cast overflowed
            raise ValueError(nonfinite_message("X", where, overflow=np.float32))
        else:
            what = nonfinite_message("X", where)
        raise ValueError(f"{what}; cosine geometry needs finite, non-zero rows")
    x = x.clone()  # may share memory with the caller's array
    x[bad] = rows / peak
    return x, torch.linalg.vector_norm(x, dim=1, keepdim=True)
