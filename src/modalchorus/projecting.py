"""Project a workspace dataset into 2-D and store the layout (``modalchorus project``)."""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modalchorus.projection.baselines import fit_project, list_methods

if TYPE_CHECKING:  # torch and LanceDB load on first use: naming a projection needs neither
    from modalchorus.projection.mfm import ModalFusionMap
    from modalchorus.store import ProjectionInfo, Workspace

METHODS = ("mfm", *list_methods())


def resolve_encoder_id(workspace: Workspace, encoder: str | None) -> str:
    """The current embedding version meant by ``encoder``: an id, a family prefix or ``None``.

    ``None`` works when the workspace holds one encoder family; ``"pocket"`` matches
    ``"pocket@..."``. A family resolves to its active version (the newest alignment run
    not undone, else the base encoder); an exact version id is returned as is.
    """
    stored = workspace.embedded_encoders()
    if not stored:
        raise ValueError(f"workspace {workspace.path} has no embeddings yet: run `embed` first")
    if encoder in stored:
        return encoder
    bases = [s for s in stored if workspace.encoder_family(s) == s]
    matches = bases if encoder is None else [s for s in bases if s.startswith(f"{encoder}@")]
    if len(matches) == 1:
        run = workspace.active_run(matches[0])
        return matches[0] if run is None else run.encoder_id
    what = "several encoders" if encoder is None else f"encoder {encoder!r}"
    raise ValueError(f"{what}: choose one of the stored encoders {', '.join(bases)}")


#: Fewest images and fewest texts a joint map is fitted on (the MFM ranks at least two
#: neighbours of each point in the other modality).
MIN_POINTS_PER_MODALITY = 3
#: Stored layouts are scored on at most this many points (a fixed sample beyond it; see
#: :func:`~modalchorus.metrics.neighbourhood.metric_sample`): scoring costs O(n^2), about 15 s
#: at 10,000 points on 2 cores, and minutes at 50,000.
METRIC_MAX_POINTS = 10_000


def check_joint_sizes(dataset: str, n_images: int, n_texts: int) -> None:
    """Raise ``ValueError`` naming the counts unless ``dataset`` can be projected jointly."""
    if min(n_images, n_texts) < MIN_POINTS_PER_MODALITY:
        raise ValueError(
            f"dataset {dataset!r} has {n_images} images and {n_texts} texts: a joint map "
            f"needs at least {MIN_POINTS_PER_MODALITY} of each; add texts (captions, class "
            "prompts or any concepts) or images"
        )


def require_datasets(workspace: Workspace) -> list[str]:
    """The workspace's dataset names; ``ValueError`` saying how to add one when it has none."""
    names = [d.name for d in workspace.datasets()]
    if not names:
        raise ValueError(
            f"workspace {workspace.path} holds no dataset: `modalchorus embed SOURCE -w "
            f"{workspace.path}` adds one"
        )
    return names


def projection_name(method: str, dataset: str, encoder_id: str) -> str:
    """Name under which a projection is stored."""
    return f"{method}:{dataset}:{encoder_id}"


def projection_dataset(name: str, method: str, encoder_id: str) -> str:
    """The dataset in a name made by :func:`projection_name` (which may hold ":" anywhere)."""
    return name.removeprefix(f"{method}:").removesuffix(f":{encoder_id}")


@dataclass(frozen=True)
class FittedLayout:
    """A fitted joint layout and what storing it needs (see :func:`fit_layout`)."""

    Y_image: np.ndarray
    Y_text: np.ndarray
    params: dict[str, Any]
    fit_seconds: float
    model_files: dict[str, bytes] | None


def fit_layout(
    method: str,
    X_image: np.ndarray,
    X_text: np.ndarray,
    *,
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> FittedLayout:
    """Fit ``method`` on image and text embeddings.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    X_image : numpy.ndarray, shape (n, d)
    X_text : numpy.ndarray, shape (m, d)
    random_state : int
    params : dict, optional
        Parameters of :class:`ModalFusionMap` or of the baseline.
    progress : callable, optional
        ``progress(fraction, message)`` during an MFM fit (fraction of its step budgets,
        ``schedule_``, done; early stopping can end the first phase sooner).

    Returns
    -------
    FittedLayout
        ``Y_image`` (n, 2), ``Y_text`` (m, 2), the parameters used, fit seconds and, for the
        MFM, its saved files (safetensors + JSON) so new points can be placed later.
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")
    params = dict(params or {})
    if method != "mfm":
        result = fit_project(method, X_image, X_text, random_state=random_state, **params)
        return FittedLayout(
            result.Y_image, result.Y_text, dict(result.params), result.fit_seconds, None
        )
    from modalchorus.projection.mfm import ModalFusionMap, neighbours_for

    # Small datasets: the k-NN candidate lists cannot be longer than the other modality.
    params.setdefault("n_neighbors", neighbours_for(len(X_image), len(X_text)))

    start = time.perf_counter()
    model = ModalFusionMap(random_state=random_state, **params)
    if progress is not None:

        def report(step: int, loss: float, fitting: ModalFusionMap) -> bool:
            total_steps = sum(fitting.schedule_.values())
            progress(step / total_steps, f"mfm: step {step}, loss {loss:.4f}")
            return False  # never stops the fit

        model.set_params(callback=report)
    model.fit(X_image, X_text)
    with tempfile.TemporaryDirectory(prefix="modalchorus-mfm-") as tmp:
        folder = model.save(Path(tmp) / "mfm")
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    used = {k: v for k, v in model.get_params().items() if k not in ("network", "callback")}
    used.update(n_iter=int(model.n_iter_), schedule=model.schedule_)
    return FittedLayout(
        model.embedding_image_, model.embedding_text_, used, time.perf_counter() - start, files
    )


def usable_ks(
    ks: Sequence[int], n_images: int, n_texts: int, max_points: int | None = METRIC_MAX_POINTS
) -> tuple[tuple[int, ...], str | None]:
    """The ks the quality metrics can score for these sizes, and a note on the others.

    The rule is the metrics' own (``check_enough_points`` on the rows ``metric_sample``
    keeps of at most ``max_points``; None: all of them), so no k kept here is then skipped
    by :func:`~modalchorus.metrics.neighbourhood.projection_report`.

    Returns
    -------
    usable : tuple of int
    note : str or None
        Which ks cannot be scored and why; None when every k can.
    """
    from modalchorus.metrics.neighbourhood import metric_sample
    from modalchorus.projection.validation import check_enough_points

    image_rows, text_rows = metric_sample(n_images, n_texts, max_points)
    usable, skipped, reason = [], [], None
    for k in ks:
        try:
            check_enough_points(len(text_rows), k, "text points")
            check_enough_points(len(image_rows), k, "image points")
        except ValueError as exc:
            skipped.append(k)
            reason = reason or str(exc)
        else:
            usable.append(k)
    note = f"k = {', '.join(map(str, skipped))} skipped: {reason}" if skipped else None
    return tuple(usable), note


def project_dataset(
    workspace: Workspace,
    dataset: str,
    encoder_id: str,
    method: str = "mfm",
    ks: tuple[int, ...] = (5, 10, 20),
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ProjectionInfo:
    """Fit ``method`` on a dataset's stored image and text embeddings and store the layout.

    The stored metrics are :func:`~modalchorus.metrics.neighbourhood.projection_report`
    (free texts such as class prompts are the concepts of the cross-modal agreement) plus
    ``fit_seconds``. An MFM projection also stores its fitted network, so new embeddings can
    later be placed in the same frame. ``progress(fraction, message)`` follows an MFM fit
    (see :func:`fit_layout`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")
    items = workspace.items(dataset=dataset)
    images, texts = items[items["kind"] == "image"], items[items["kind"] == "text"]
    check_joint_sizes(dataset, len(images), len(texts))
    image_ids, X_image = workspace.get_embeddings(encoder_id, images["id"].tolist())
    text_ids, X_text = workspace.get_embeddings(encoder_id, texts["id"].tolist())
    fitted = fit_layout(
        method, X_image, X_text, random_state=random_state, params=params, progress=progress
    )
    concepts = np.flatnonzero(texts["image_id"].isna().to_numpy())
    scored_ks, _ = usable_ks(ks, len(images), len(texts))
    from modalchorus.metrics.neighbourhood import projection_report

    report = projection_report(
        X_image,
        X_text,
        fitted.Y_image,
        fitted.Y_text,
        ks=scored_ks or (1,),
        concepts=concepts if len(concepts) else None,
        max_points=METRIC_MAX_POINTS,
    )
    return workspace.put_projection(
        projection_name(method, dataset, encoder_id),
        encoder_id,
        image_ids + text_ids,
        np.concatenate([fitted.Y_image, fitted.Y_text]).astype(np.float32),
        method=method,
        params={"random_state": random_state, **fitted.params},
        metrics={**report, "fit_seconds": round(fitted.fit_seconds, 3)},
        model_files=fitted.model_files,
    )


def load_projection_model(workspace: Workspace, name: str) -> ModalFusionMap:
    """The fitted MFM stored with projection ``name`` (to ``transform`` new embeddings)."""
    from modalchorus.projection.mfm import ModalFusionMap, UnsignedSaveWarning

    files = workspace.projection_model_files(name)
    if not files:
        raise ValueError(f"projection {name!r} has no stored model (only MFM projections do)")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # Both files were stored in one write, so a model from before save digests is sound;
        # warning about it would name a temporary folder the user cannot act on.
        warnings.simplefilter("ignore", UnsignedSaveWarning)
        for filename, data in files.items():
            (Path(tmp) / filename).write_bytes(data)
        try:
            return ModalFusionMap.load(tmp)
        except ValueError as exc:
            # The cause (chained) names a temporary folder; the remedy is to project again.
            raise ValueError(
                f"projection {name!r} has a damaged stored model: run `modalchorus project` "
                "for it again"
            ) from exc
