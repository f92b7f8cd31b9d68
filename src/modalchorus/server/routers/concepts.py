"""Concept axis: two typed concepts define an axis; items are placed by relative similarity."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Response

from modalchorus.server.analysis import concept_axis
from modalchorus.server.errors import invalid
from modalchorus.server.frames import MEDIA_TYPE, encode_frame
from modalchorus.server.schemas import ConceptAxisRequest, Problem
from modalchorus.server.state import ServerState, get_state

router = APIRouter(tags=["concept axis"])
State = Annotated[ServerState, Depends(get_state)]
#: Largest coordinate difference at which two concept embeddings count as the same.
SAME_EMBEDDING_TOLERANCE = 1e-6


@router.post(
    "/concept-axis",
    response_class=Response,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "An axis frame."},
        404: {"model": Problem},
        409: {"model": Problem, "description": "The view's encoder cannot encode text here."},
    },
)
def post_concept_axis(request: ConceptAxisRequest, state: State) -> Response:
    """Place the dataset's items on ``cos(x, c_b) - cos(x, c_a)`` (and ``c_d`` vs ``c_c``).

    The concepts are encoded by the server's encoder, which must be the view's encoder
    (with the active alignment applied when the view shows an aligned version).
    The answer is a frame (see ``modalchorus.server.frames``) with float32 columns ``x``
    and, when ``concept_c`` and ``concept_d`` are given, ``y``, one row per item in the
    order of ``/api/projection/points``.
    """
    if request.concept_a == request.concept_b:
        raise invalid("concept_b", "concept_b must differ from concept_a")
    second = (request.concept_c, request.concept_d)
    if (second[0] is None) != (second[1] is None):
        field = "concept_d" if second[1] is None else "concept_c"
        raise invalid(field, "a second axis needs both concept_c and concept_d")
    if second[0] is not None and second[0] == second[1]:
        raise invalid("concept_d", "concept_d must differ from concept_c")
    view = state.view(request.dataset, request.encoder)
    encoder = state.encoder_for(view.encoder_id)  # 409 for another encoder family
    texts = [request.concept_a, request.concept_b]
    if second[0] is not None and second[1] is not None:
        texts += [second[0], second[1]]
    concepts = encoder.encode_texts(texts)
    for a, b in ((0, 1), (2, 3))[: len(texts) // 2]:
        # e.g. "Cat" and "cat" for an uncased encoder: the axis would draw rounding noise
        if np.allclose(concepts[a], concepts[b], rtol=0, atol=SAME_EMBEDDING_TOLERANCE):
            field = f"concept_{'abcd'[b]}"
            raise invalid(
                field,
                f"{texts[b]!r} and {texts[a]!r} embed alike for this encoder (it may ignore "
                "case or punctuation): the axis would be flat; choose another concept",
            )
    columns = {"x": concept_axis(view.vectors, concepts[0], concepts[1])}
    if len(texts) == 4:
        columns["y"] = concept_axis(view.vectors, concepts[2], concepts[3])
    frame = encode_frame(
        columns,
        dict.fromkeys(columns, "float32"),
        meta={"dataset": view.dataset, "encoder": view.encoder_id, "concepts": texts},
    )
    return Response(frame, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})
