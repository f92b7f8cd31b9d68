"""Request and response models of the HTTP API: the contract the front end codes against.

Point data (coordinates, kinds, labels, axis values) does not travel as JSON: see
:mod:`modalchorus.server.frames` for the binary frame those endpoints return.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from modalchorus.data.text import has_visible_character

#: Longest concept text the concept axis accepts, in characters.
MAX_CONCEPT_LENGTH = 200
#: Most neighbours an instance detail may ask for.
MAX_NEIGHBOURS = 100
#: Longest text the augmentation panel accepts, in characters.
MAX_ADDED_TEXT_LENGTH = 1000
#: Most texts one request may add.
MAX_ADDED_TEXTS = 64
#: Longest accepted name of an uploaded file, in characters (what most file systems allow).
MAX_FILENAME_LENGTH = 255

Task = Literal["zero-shot classification", "retrieval"]
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


def _visible(text: str) -> str:
    """``text`` if some character of it draws something (a 422 otherwise)."""
    if not has_visible_character(text):
        raise ValueError(
            "text has no visible character (only spaces or invisible characters such as "
            "U+200B zero-width space)"
        )
    return text


def _not_bool(expected: str) -> BeforeValidator:
    """Refuse JSON booleans where ``expected`` is wanted: pydantic reads them as 0 or 1."""

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected {expected}, got {str(value).lower()}")
        return value

    return BeforeValidator(check)


#: A text to embed: trimmed, then 1-200 characters, at least one of them visible.
ConceptText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONCEPT_LENGTH),
    AfterValidator(_visible),
]
#: An id such as a set's or an intent's: an integer, never ``true`` / ``false``.
IntId = Annotated[int, _not_bool("an integer id")]
SetName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- settings


class DatasetSummary(_Model):
    """One dataset of the workspace, as the settings view lists it."""

    name: str
    n_images: int
    n_texts: int
    classes: list[str] | None = Field(description="Class names, for labelled datasets.")
    tasks: list[Task] = Field(description="Tasks the dataset supports, preferred first.")
    n_concepts: int = Field(description="Free texts (e.g. class prompts) without an image.")


class Settings(_Model):
    """What the settings view can choose from."""

    workspace: str = Field(
        description="A stable key of the workspace: its folder's name and a digest of its "
        "location, never the path (e.g. to keep the settings last used on it)."
    )
    datasets: list[DatasetSummary]
    encoders: list[str] = Field(
        description="Encoder ids with embeddings in the workspace (bases of aligned versions)."
    )
    methods: list[str] = Field(description="Projection methods; the first is the default.")
    default_method: str
    max_concept_length: int = MAX_CONCEPT_LENGTH


# ---------------------------------------------------------------- jobs


class JobInfo(_Model):
    """A background job (e.g. fitting a projection) and its progress."""

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    message: str
    error: str | None = None
    result: str | None = Field(None, description="E.g. the name of the stored projection.")
    created_at: float
    updated_at: float


# ---------------------------------------------------------------- projections


class ProjectionRequest(_Model):
    """Which projection to show (fitted in the background when none is stored)."""

    dataset: str = Field(min_length=1)
    encoder: str = Field(min_length=1)
    method: str = Field("mfm", min_length=1)
    refit: bool = Field(False, description="Fit again even when one is stored.")


class ProjectionMeta(_Model):
    """A stored projection's metadata and quality metrics."""

    name: str
    dataset: str
    encoder: str
    method: str
    n_items: int = Field(
        description="Points the dataset's view draws (GET/POST /api/projection); the rows "
        "stored (GET /api/projections)."
    )
    params: dict[str, object]
    metrics: dict[str, object] = Field(
        description="projection_report: ks, inter_T@k / inter_C@k (means and the two "
        "directions), intra-modal T_image@k ..., agreement (over n_concepts texts), skipped; "
        "n_image / n_text and n_image_scored / n_text_scored (layouts of more than 10,000 "
        "points are scored on a fixed sample)."
    )
    created_at: str
    updated_at: str


class ProjectionStatus(_Model):
    """Answer of ``POST /api/projection``: ready to read, or a job to follow."""

    status: Literal["ready", "fitting"]
    projection: ProjectionMeta | None = None
    job: JobInfo | None = None


# ---------------------------------------------------------------- items


class ItemRef(_Model):
    """A short reference to an item."""

    id: str
    kind: Literal["image", "text"]
    label: str | None = None
    text: str | None = None


class ItemDetail(_Model):
    """One item, with its prediction and its related items."""

    id: str
    kind: Literal["image", "text"]
    dataset: str
    label: str | None
    split: str | None
    text: str | None
    image_id: str | None = Field(description="For a caption: the image it describes.")
    is_concept: bool = Field(description="A free text without an image (e.g. a class prompt).")
    thumbnail_url: str | None
    predicted: str | None = Field(
        description="Zero-shot prediction (nearest class) of an image of a labelled dataset."
    )
    related: list[ItemRef] = Field(
        description="An image's captions, or a caption's image (ground-truth pairs)."
    )


class Neighbour(_Model):
    """A cross-modal neighbour of an item and its cosine similarity."""

    id: str
    kind: Literal["image", "text"]
    label: str | None
    text: str | None
    similarity: float
    is_pair: bool = Field(description="Ground-truth pair (caption of the image, or its image).")


class Neighbours(_Model):
    """The top-k cross-modal neighbours of an item under one encoder."""

    item_id: str
    encoder: str
    k: int
    neighbours: list[Neighbour]


# ---------------------------------------------------------------- concept axis


class ConceptAxisRequest(_Model):
    """Two concepts (and optionally two more for a second axis) to place items by."""

    dataset: str = Field(min_length=1)
    encoder: str = Field(min_length=1)
    concept_a: ConceptText
    concept_b: ConceptText
    concept_c: ConceptText | None = None
    concept_d: ConceptText | None = None


# ---------------------------------------------------------------- metrics


class TaskMetrics(_Model):
    """Task metrics of a dataset from its stored embeddings."""

    task: Task | None
    dataset: str
    encoder: str
    n: int | None = None
    accuracy: float | None = None
    classes: list[str] | None = None
    per_class_accuracy: dict[str, float | None] | None = None
    confusion: list[list[int]] | None = Field(
        None, description="Rows: true class, columns: predicted class."
    )
    recall: dict[str, float] | None = Field(
        None, description='Retrieval Recall@k, keys like "t2i_R@1" and "i2t_R@5".'
    )


# ---------------------------------------------------------------- sets


class SetCreate(_Model):
    """A new named set of items (e.g. from a lasso)."""

    name: SetName
    item_ids: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        min_length=1, description="At least one item id; every id must be an item."
    )
    color: str | None = Field(
        None, pattern=r"^\s*#([0-9a-fA-F]{3}){1,2}\s*$", description="#rgb or #rrggbb."
    )
    description: str = Field("", max_length=10_000)


class SetRename(_Model):
    """A set's new name."""

    name: SetName


class SetOut(_Model):
    """A stored set."""

    id: int
    name: str
    item_ids: list[str]
    n_items: int
    color: str | None
    description: str
    created_at: str
    updated_at: str


# ---------------------------------------------------------------- augmentation

AddedText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ADDED_TEXT_LENGTH),
    AfterValidator(_visible),
]


class TextsAdd(_Model):
    """Free texts to add as items of the ``uploads`` dataset, placed in a view's map."""

    dataset: str = Field(min_length=1, description="The shown dataset (whose map places them).")
    encoder: str = Field(min_length=1, description="The shown encoder.")
    texts: list[AddedText] = Field(min_length=1, max_length=MAX_ADDED_TEXTS)
    set_name: SetName | None = Field(
        None, description="Tag the texts into this set (created, or extended when it exists)."
    )


class AddedItem(_Model):
    """An uploaded image or added text and where the map placed it."""

    id: str
    kind: Literal["image", "text"]
    name: str = Field(description="The uploaded file's name, or the text.")
    new: bool = Field(description="False when the same content was already an item.")
    x: float | None = Field(description="Map position; None without a stored MFM map.")
    y: float | None


class AugmentResult(_Model):
    """What an upload (or added texts) did."""

    dataset: str = Field(description='The dataset holding the added items ("uploads").')
    view_dataset: str
    encoder: str = Field(description="The embedding version the items were embedded with.")
    projection: str | None = Field(
        description="The MFM projection they were placed in (None when none is stored yet)."
    )
    items: list[AddedItem]
    n_new: int
    set: SetOut | None = None


class Removed(_Model):
    """What removing an uploaded item did."""

    removed: list[str] = Field(description="Ids of the removed items.")


# ---------------------------------------------------------------- alignment

#: A set reference: a workspace set id, a set name, or a list of item ids.
SetRef = Annotated[
    int | Annotated[str, StringConstraints(min_length=1)] | list[str],
    _not_bool("a set id, a set name or a list of item ids"),
    Field(description="A set id, a set name, or a list of item ids."),
]
# strict: a boolean is no number (JSON integers still are)
Strength = Annotated[
    float, Field(gt=0.0, le=10.0, strict=True, description="Weight of the intent, (0, 10].")
]
Scope = Literal["adapter", "lora", "last-blocks"]


class PointSetIntent(_Model):
    """Move ``point`` toward the members of ``target`` (and away from ``avoid``)."""

    type: Literal["point-set"]
    point: str = Field(min_length=1, description="Item id.")
    target: SetRef
    avoid: SetRef | None = None
    strength: Strength = 1.0


class SetSetIntent(_Model):
    """Pull sets ``a`` and ``b`` together (``align``) or push them apart (``separate``)."""

    type: Literal["set-set"]
    a: SetRef
    b: SetRef
    mode: Literal["align", "separate"] = "align"
    strength: Strength = 1.0


IntentSpec = Annotated[PointSetIntent | SetSetIntent, Field(discriminator="type")]


class IntentOut(_Model):
    """A stored intent."""

    id: int
    spec: IntentSpec
    created_at: str


class AlignmentRunRequest(_Model):
    """Tune the encoder family's active version toward stored and inline intents."""

    encoder: str = Field(min_length=1, description="Any version id of the encoder family.")
    intent_ids: list[IntId] = Field(default_factory=list, description="Stored intents to use.")
    intents: list[IntentSpec] = Field(default_factory=list, description="Inline intents.")
    scope: Scope = "adapter"
    # bool first: a lax int would read ``true`` as 1, which hold_anchors refuses
    params: dict[str, bool | int | float | str] | None = Field(
        None, description="Tuner hyper-parameters (e.g. steps, learning_rate, preserve_weight)."
    )


class MovedPoint(_Model):
    """A point that moved far in 2-D in an alignment run."""

    item_id: str
    dataset: str
    distance: float


class RunOut(_Model):
    """A recorded alignment run."""

    id: int
    parent_run_id: int | None
    base_encoder_id: str
    parent_encoder_id: str = Field(description="The version the run started from (before).")
    encoder_id: str = Field(description="The version the run produced (after).")
    scope: str
    intents: list[dict[str, object]]
    params: dict[str, object]
    metrics_before: dict[str, dict[str, object]] = Field(
        description="{dataset: task metrics} of the parent version."
    )
    metrics_after: dict[str, dict[str, object]]
    moved: list[MovedPoint]
    seconds: float
    created_at: str
    active: bool


class AlignmentHistory(_Model):
    """An encoder family's runs and which version is current."""

    base_encoder_id: str
    active_encoder_id: str
    active_run_id: int | None
    can_undo: bool
    can_redo: bool
    runs: list[RunOut] = Field(description="Oldest first.")


class EncoderRef(_Model):
    """An encoder family, by any of its version ids."""

    encoder: str = Field(min_length=1)


class AlignmentStep(_Model):
    """Answer of undo / redo: the run stepped over (None if nothing to do) and the history."""

    run: RunOut | None
    history: AlignmentHistory


class Problem(_Model):
    """An error: ``detail`` says what went wrong."""

    detail: str
