"""Alignment runs on a workspace: tune -> re-embed -> re-project in the same frame -> record.

:func:`run_alignment` is what ``modalchorus align`` and the server call. A run starts from
the encoder family's *active* version, writes a new version (embeddings, same-frame MFM
layouts, the run record with its weights) in **one** commit and makes it active; if it
fails or the process dies before that commit, the workspace is exactly as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modalchorus.align.intents import Intent, intent_to_dict, resolve_intents
from modalchorus.align.state import AlignedEncoder, AlignmentState, infer_base_spec
from modalchorus.align.tuner import AlignmentTuner, index_intents
from modalchorus.data.images import load_image_file
from modalchorus.encoders.base import Encoder
from modalchorus.evaluation import task_metrics
from modalchorus.metrics.neighbourhood import projection_report
from modalchorus.projecting import METRIC_MAX_POINTS, load_projection_model, projection_name
from modalchorus.store import RunInfo, UnknownEncoderError, Workspace

logger = logging.getLogger(__name__)

#: How many of the points that moved most a run records.
N_MOVED = 20

Progress = Callable[[float, str], None]


def active_version(workspace: Workspace, encoder_id: str) -> str:
    """The current embedding version of ``encoder_id``'s family (its base id if none)."""
    run = workspace.active_run(encoder_id)
    return workspace.encoder_family(encoder_id) if run is None else run.encoder_id


def undo_alignment(workspace: Workspace, encoder_id: str) -> RunInfo | None:
    """Make the active run's parent version current; returns the run undone (or None)."""
    return workspace.step_alignment(encoder_id, "undo")


def redo_alignment(workspace: Workspace, encoder_id: str) -> RunInfo | None:
    """Make the newest run tuned from the current version current (or return None)."""
    return workspace.step_alignment(encoder_id, "redo")


def parent_state(
    workspace: Workspace, encoder_id: str, dim: int
) -> tuple[AlignmentState, int | None]:
    """State and run id of the family's active version (an empty state for the base)."""
    base = workspace.encoder_family(encoder_id)
    run = workspace.active_run(base)
    if run is None:
        return AlignmentState(base, infer_base_spec(base), dim), None
    state, _ = AlignmentState.from_files(workspace.alignment_run_files(run.id))
    return state, run.id


def version_encoder(workspace: Workspace, version: str, base: Encoder) -> Encoder:
    """An encoder that embeds new content as embedding ``version`` does.

    ``base`` itself for its own id; for an aligned version of its family, ``base`` with the
    run's tuned state applied (an :class:`AlignedEncoder`; ``base`` is not changed).

    Raises
    ------
    UnknownEncoderError
        No alignment run of the workspace made ``version``.
    ValueError
        ``version`` belongs to another encoder family than ``base``.
    """
    if version == base.id:
        return base
    run = next((r for r in workspace.alignment_runs() if r.encoder_id == version), None)
    if run is None:
        raise UnknownEncoderError(
            f"unknown embedding version {version!r}: it is neither {base.id!r} nor a version "
            "an alignment run of this workspace made"
        )
    if run.base_encoder_id != base.id:
        raise ValueError(
            f"embedding version {version!r} is a version of encoder {run.base_encoder_id!r}, "
            f"not of {base.id!r}"
        )
    state, _ = AlignmentState.from_files(workspace.alignment_run_files(run.id))
    return AlignedEncoder(state, version, base)


def export_run(
    workspace: Workspace, run_id: int, directory: str | Path, *, overwrite: bool = False
) -> Path:
    """Write a run's ``alignment.json`` + ``alignment.safetensors`` into ``directory``.

    ``create_encoder(f"aligned:{directory}")`` loads the aligned encoder back.

    Raises
    ------
    FileExistsError
        ``directory`` already holds one of the two files and ``overwrite`` is False;
        nothing is written.
    """
    files = workspace.alignment_run_files(run_id)
    out = Path(directory).expanduser()
    existing = [name for name in files if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds {' and '.join(existing)} (an earlier export?); give another "
            "folder, or pass overwrite=True to replace them"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / name)
    return out


def run_alignment(
    workspace: Workspace,
    intents: Sequence[Intent],
    *,
    encoder_id: str,
    scope: str = "adapter",
    params: dict[str, Any] | None = None,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> RunInfo:
    """Tune the active version of ``encoder_id``'s family toward ``intents`` and record it.

    Parameters
    ----------
    workspace : Workspace
    intents : Sequence[Intent]
        :class:`PointSet` / :class:`SetSet`; set references are resolved here.
    encoder_id : str
        Any version id of the family (base or aligned); the run starts from the active one.
    scope : {"adapter", "lora", "last-blocks"}
    params : dict, optional
        :class:`AlignmentTuner` hyper-parameters.
    encoder : Encoder, optional
        The family's base encoder; required for the tower scopes.
    progress : callable, optional
        ``progress(fraction, message)``; never called after the run is committed, so an
        exception it raises (e.g. to cancel) leaves the workspace as it was.

    Returns
    -------
    RunInfo

    Raises
    ------
    IntentError
        Bad intents (nothing is written).
    UnknownSetError, UnknownEncoderError
        Unknown set reference or encoder (nothing is written).
    ValueError
        Unknown or bad tuner parameters, checked before any work (nothing is written).
    """
    started = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    tuner = AlignmentTuner(
        scope, progress=lambda f, m: report(0.05 + 0.75 * f, m), **_tuner_params(params)
    ).validate()
    base = workspace.encoder_family(encoder_id)
    parent_id = active_version(workspace, base)
    if encoder is not None and encoder.id != base:
        raise ValueError(f"encoder {encoder.id!r} is not the base {base!r} of this family")

    items = workspace.items()
    ids, reference = workspace.get_embeddings(parent_id)
    state, parent_run = parent_state(workspace, base, reference.shape[1])
    items = items.set_index("id").loc[ids].reset_index()
    is_image = (items["kind"] == "image").to_numpy()
    row_of = {item_id: row for row, item_id in enumerate(ids)}
    resolved = resolve_intents(workspace, intents, set(row_of))

    def images() -> list[Image.Image]:  # tower scopes: every image, decoded once
        sources = items.loc[is_image, "source"].tolist()
        loaded = []
        for i, source in enumerate(sources):
            if i % 256 == 0:
                report(0.05, f"loading images {i}/{len(sources)}")
            loaded.append(_load_image(source))
        return loaded

    tuner.fit(
        reference,
        is_image,
        index_intents(resolved, row_of),
        state,
        encoder=encoder,
        images=images,
        texts=items.loc[~is_image, "text"].tolist(),
        concepts=np.flatnonzero(~is_image & items["image_id"].isna().to_numpy()),
    )
    new_id = tuner.state_.encoder_id(scope)
    new = tuner.embeddings_
    same = [r for r in workspace.alignment_runs(base) if r.encoder_id == new_id]
    if same:  # a deterministic rerun of a recorded run: its version is already stored
        report(1.0, f"identical to run {same[0].id}: made it current again")
        return workspace.activate_alignment_run(same[0].id)

    lookup_old = _lookup(ids, reference)
    lookup_new = _lookup(ids, new)
    kind_of = dict(zip(ids, items["kind"], strict=True))
    # Free texts (class prompts, typed concepts) score the agreement, as at fit time.
    free_texts = set(items.loc[~is_image & items["image_id"].isna(), "id"])
    layouts, moved = _same_frame_layouts(
        workspace, parent_id, new_id, lookup_new, kind_of, free_texts, report
    )
    # A report between the scorings of each dataset and version: each is a cancel point.
    datasets = sorted(set(items["dataset"]))
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    steps = [(before, lookup_old, d) for d in datasets] + [(after, lookup_new, d) for d in datasets]
    for n, (scores, lookup, dataset) in enumerate(steps):
        report(0.92 + 0.05 * n / len(steps), f"task metrics of {dataset}")
        scores[dataset] = task_metrics(workspace, dataset, lookup)
    record = {
        "parent_run_id": parent_run,
        "base_encoder_id": base,
        "parent_encoder_id": parent_id,
        "encoder_id": new_id,
        "scope": scope,
        "intents": [intent_to_dict(i) for i in resolved],
        "params": {
            **tuner.get_params(),
            "steps": tuner.steps_,
            "learning_rate": tuner.learning_rate_,
            "preserve_sample": tuner.preserve_sample_,
            "preserve_weight": tuner.preserve_weight_,
        },
        "metrics_before": before,
        "metrics_after": after,
        "moved": moved,
        "seconds": round(time.perf_counter() - started, 3),
    }
    report(0.97, "storing the new version")
    info = workspace.commit_alignment_run(
        record,
        (ids, items["content_hash"].tolist(), new),
        layouts,
        tuner.state_.to_files(new_id),
    )
    # No progress report after the commit: a job cancelled at a progress call has written
    # nothing (see modalchorus.server.jobs).
    logger.info("alignment run %d (%s) took %.1f s", info.id, scope, info.seconds)
    return info


def _tuner_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` as :class:`AlignmentTuner` keywords, or a ValueError naming a bad key."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of tuner parameters, got {params!r}")
    allowed = [name for name in AlignmentTuner().get_params() if name != "scope"]
    for name in params:
        if name not in allowed:
            own = " (an argument of run_alignment itself)" if name in ("scope", "progress") else ""
            raise ValueError(
                f"unknown tuner parameter {name!r}{own}; use any of {', '.join(allowed)}"
            )
    return dict(params)


def _load_image(source: str) -> Image.Image:
    """Decode an item's image from its recorded source (a file, or a CIFAR batch row)."""
    if Path(source).is_file():
        return load_image_file(source)
    from modalchorus.data.cifar import load_cifar_source

    try:
        return load_cifar_source(source)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(
            f"cannot read the image of an item for tower tuning ({err}); "
            "use scope 'adapter', which needs no raw inputs"
        ) from err


def _lookup(ids: list[str], vectors: np.ndarray) -> Callable[[list[str]], np.ndarray]:
    row_of = {item_id: row for row, item_id in enumerate(ids)}
    return lambda wanted: vectors[[row_of[i] for i in wanted]]


def _same_frame_layouts(
    workspace: Workspace,
    parent_id: str,
    new_id: str,
    lookup: Callable[[list[str]], np.ndarray],
    kind_of: dict[str, str],
    free_texts: set[str],
    report: Progress,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Place the new version with each fitted MFM of the parent; the most-moved points.

    ``report`` is called before each layout (a cancel point)."""
    layouts, moved = [], []
    for info in workspace.projections(parent_id):
        if info.method != "mfm" or not info.model_files:
            continue
        report(0.82, f"placing the new embeddings with {info.name}")
        model = load_projection_model(workspace, info.name)
        item_ids, old = workspace.get_projection(info.name)
        current = np.array([i in kind_of for i in item_ids], dtype=bool)
        if not current.all():  # items removed since the layout was stored
            item_ids, old = [i for i, c in zip(item_ids, current, strict=True) if c], old[current]
        kinds = np.array([kind_of[i] for i in item_ids])
        vectors = lookup(item_ids)
        coords = np.empty_like(old, dtype=np.float64)
        for modality in ("image", "text"):
            mask = kinds == modality
            if mask.any():
                coords[mask] = model.transform(vectors[mask], modality=modality)
        dataset = info.name.split(":")[1]
        free = np.array([i in free_texts for i in item_ids])
        metrics = _layout_metrics(vectors, coords, kinds, free, info.metrics)
        layouts.append(
            {
                "name": projection_name("mfm", dataset, new_id),
                "encoder_id": new_id,
                "item_ids": item_ids,
                "coords": coords.astype(np.float32),
                "method": "mfm",
                "params": {**info.params, "frame_of": info.name},
                "metrics": metrics,
                "model_files": workspace.projection_model_files(info.name),
            }
        )
        distance = np.linalg.norm(coords - old, axis=1)
        for row in np.argsort(-distance)[:N_MOVED]:
            moved.append(
                {"item_id": item_ids[row], "dataset": dataset, "distance": float(distance[row])}
            )
    moved.sort(key=lambda m: -m["distance"])
    return layouts, moved[:N_MOVED]


def _layout_metrics(
    vectors: np.ndarray,
    coords: np.ndarray,
    kinds: np.ndarray,
    free: np.ndarray,
    previous: dict[str, Any],
) -> dict[str, Any]:
    """Projection quality of a same-frame layout (the ks the parent layout reported).

    ``free`` marks the free texts (e.g. class prompts): the concepts of the agreement, and
    kept first in the scored sample, as when the parent layout was scored.
    """
    image, text = kinds == "image", kinds == "text"
    concepts = np.flatnonzero(free[text])
    ks = tuple(int(k) for k in previous.get("ks", (10,)) if k < min(image.sum(), text.sum()))
    if not ks:
        return {}
    report = projection_report(
        vectors[image],
        vectors[text],
        coords[image],
        coords[text],
        ks=ks,
        concepts=concepts if concepts.size else None,
        max_points=METRIC_MAX_POINTS,
    )
    return {**report, "frame": "transform"}
