"""Alignment intents: what a user wants to move, stated over points and sets.

Two kinds (DESIGN §7):

* :class:`PointSet` — move one item toward a target set (and away from an avoid set);
* :class:`SetSet` — pull two sets together (``"align"``) or push them apart
  (``"separate"``).

A *set reference* is a workspace set id (``int``), a set name (``str``) or an explicit
list of item ids. :func:`resolve_intents` turns references into item ids and checks them
against the workspace; :func:`intent_from_dict` / :func:`intent_to_dict` are the JSON form
(used by ``modalchorus align --intents`` and the HTTP API).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from modalchorus.store import UnknownItemError, UnknownSetError, Workspace

SetRef = Union[int, str, Sequence[str]]  # noqa: UP007 - a runtime alias, readable in docs
MODES = ("align", "separate")
#: Largest accepted strength (a weight on the intent's loss term).
MAX_STRENGTH = 10.0


class IntentError(ValueError):
    """An intent that cannot be run: malformed, unknown ids, empty or conflicting sets."""


class UnknownIntentItemError(IntentError, UnknownItemError):
    """An intent names item ids the run cannot move: not items, or without an embedding.

    Both an :class:`IntentError` and, like an unknown set's :class:`UnknownSetError`, a
    store not-found error (the HTTP API answers 404 for either).
    """


#: How many unknown item ids an error names.
_NAMED_IDS = 3


def _check_strength(strength: Any) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise IntentError(f"strength must be a number, got {strength!r}")
    if not math.isfinite(strength) or not 0 < strength <= MAX_STRENGTH:
        raise IntentError(f"strength must be in (0, {MAX_STRENGTH}], got {strength}")
    return float(strength)


def _check_ref(ref: Any, what: str) -> SetRef:
    if isinstance(ref, bool):
        raise IntentError(f"{what} must be a set id, a set name or a list of item ids")
    if isinstance(ref, int):
        return ref
    if isinstance(ref, str):
        if not ref.strip():
            raise IntentError(f"{what} is an empty set name")
        return ref
    if isinstance(ref, Sequence) and all(isinstance(i, str) for i in ref):
        if not ref:
            raise IntentError(f"{what} is an empty list of items")
        return tuple(ref)
    raise IntentError(f"{what} must be a set id, a set name or a list of item ids, got {ref!r}")


@dataclass(frozen=True)
class PointSet:
    """Move ``point`` toward the members of ``target`` (and away from ``avoid``).

    Parameters
    ----------
    point : str
        Item id.
    target : SetRef
        Set id, set name or item ids the point should join.
    avoid : SetRef | None
        Items the point should leave. When the target is concept texts (e.g. a class's
        prompts) the point also competes with every other concept text, as in zero-shot
        classification; with neither, it is contrasted with everything else.
    strength : float
        Weight of the intent's loss term, in (0, 10].
    """

    point: str
    target: SetRef
    avoid: SetRef | None = None
    strength: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.point, str) or not self.point:
            raise IntentError(f"point must be an item id, got {self.point!r}")
        object.__setattr__(self, "target", _check_ref(self.target, "target"))
        if self.avoid is not None:
            object.__setattr__(self, "avoid", _check_ref(self.avoid, "avoid"))
        object.__setattr__(self, "strength", _check_strength(self.strength))


@dataclass(frozen=True)
class SetSet:
    """Pull sets ``a`` and ``b`` together (``"align"``) or apart (``"separate"``).

    Parameters
    ----------
    a, b : SetRef
    mode : {"align", "separate"}
    strength : float
        Weight of the intent's loss term, in (0, 10].
    """

    a: SetRef
    b: SetRef
    mode: Literal["align", "separate"] = "align"
    strength: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "a", _check_ref(self.a, "set a"))
        object.__setattr__(self, "b", _check_ref(self.b, "set b"))
        if self.mode not in MODES:
            raise IntentError(f"mode must be 'align' or 'separate', got {self.mode!r}")
        object.__setattr__(self, "strength", _check_strength(self.strength))


Intent = Union[PointSet, SetSet]  # noqa: UP007

_KEYS = {
    "point-set": ({"type", "point", "target"}, {"avoid", "strength"}),
    "set-set": ({"type", "a", "b"}, {"mode", "strength"}),
}


def intent_from_dict(spec: Mapping[str, Any]) -> Intent:
    """Build an intent from its JSON form.

    ``{"type": "point-set", "point": id, "target": ref, "avoid": ref | null, "strength": s}``
    or ``{"type": "set-set", "a": ref, "b": ref, "mode": "align" | "separate", "strength": s}``.

    Raises
    ------
    IntentError
        Not an object, unknown type, missing or unknown keys, bad values.
    """
    if not isinstance(spec, Mapping):
        raise IntentError(f"an intent must be a JSON object, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in _KEYS:
        raise IntentError(f"intent type must be 'point-set' or 'set-set', got {kind!r}")
    required, optional = _KEYS[kind]
    missing = sorted(required - set(spec))
    unknown = sorted(set(spec) - required - optional)
    if missing:
        raise IntentError(f"{kind} intent is missing {', '.join(missing)}")
    if unknown:
        raise IntentError(f"{kind} intent has unknown keys {', '.join(unknown)}")
    fields = {k: v for k, v in spec.items() if k != "type"}
    if "strength" in fields and fields["strength"] is None:
        del fields["strength"]
    return PointSet(**fields) if kind == "point-set" else SetSet(**fields)


def intent_to_dict(intent: Intent) -> dict[str, Any]:
    """The JSON form of an intent (set references as given; lists for item ids)."""

    def ref(r: SetRef | None) -> Any:
        return list(r) if isinstance(r, tuple) else r

    if isinstance(intent, PointSet):
        return {
            "type": "point-set",
            "point": intent.point,
            "target": ref(intent.target),
            "avoid": ref(intent.avoid),
            "strength": intent.strength,
        }
    return {
        "type": "set-set",
        "a": ref(intent.a),
        "b": ref(intent.b),
        "mode": intent.mode,
        "strength": intent.strength,
    }


def _members(workspace: Workspace, ref: SetRef, what: str) -> tuple[str, ...]:
    if isinstance(ref, tuple):
        return tuple(dict.fromkeys(ref))
    sets = workspace.sets()
    found = [s for s in sets if (s.id == ref if isinstance(ref, int) else s.name == ref)]
    if not found:
        named = f"with id {ref}" if isinstance(ref, int) else f"named {ref!r}"
        raise UnknownSetError(f"{what}: the workspace has no set {named}")
    return tuple(found[0].item_ids)


def resolve_intents(
    workspace: Workspace,
    intents: Sequence[Intent],
    known_ids: set[str],
    labels: Sequence[str] | None = None,
) -> list[Intent]:
    """Replace set references by item ids and check every id against ``known_ids``.

    Parameters
    ----------
    workspace : Workspace
        Where named and numbered sets are looked up.
    intents : Sequence[Intent]
        At least one.
    known_ids : set[str]
        Items the run can move (those with an embedding in the parent version).
    labels : Sequence[str] | None
        How errors name each intent (e.g. ``"stored intent #3"``); default
        ``"intent 1"``, ``"intent 2"``, ...

    Returns
    -------
    list[Intent]
        The same intents with every set reference a tuple of item ids.

    Raises
    ------
    IntentError
        Not a sequence of intents, no intents, empty sets, a point in its own avoid set, a
        point set that overlaps its avoid set, or two identical sets in a set-set intent.
    UnknownIntentItemError
        An item id (the point or a listed or set member) not in ``known_ids``; an
        ``IntentError`` and an ``UnknownItemError``.
    UnknownSetError
        A set id or name the workspace does not hold.
    """
    if isinstance(intents, str) or not isinstance(intents, Sequence):
        raise IntentError(f"intents must be a list of PointSet / SetSet, got {intents!r}")
    if not intents:
        raise IntentError("no intents given: state at least one point-set or set-set intent")

    def members(ref: SetRef, what: str) -> tuple[str, ...]:
        ids = _members(workspace, ref, what)
        if not ids:
            raise IntentError(f"{what} is empty")
        unknown = [i for i in ids if i not in known_ids]
        if unknown:
            named = ", ".join(repr(i) for i in unknown[:_NAMED_IDS])
            more = ", ..." if len(unknown) > _NAMED_IDS else ""
            raise UnknownIntentItemError(
                f"{what}: {len(unknown)} item id(s) unknown or without an embedding: {named}{more}"
            )
        return ids

    resolved: list[Intent] = []
    if labels is None:
        labels = [f"intent {n}" for n in range(1, len(intents) + 1)]
    for where, intent in zip(labels, intents, strict=True):
        if isinstance(intent, PointSet):
            if intent.point not in known_ids:
                raise UnknownIntentItemError(
                    f"{where}: unknown item id {intent.point!r} (or it has no embedding)"
                )
            target = members(intent.target, f"{where} target")
            avoid = None if intent.avoid is None else members(intent.avoid, f"{where} avoid")
            if avoid is not None:
                both = set(target) & set(avoid)
                if both:
                    raise IntentError(
                        f"{where}: {len(both)} item(s) are in both target and avoid, "
                        f"e.g. {sorted(both)[0]!r}"
                    )
                if intent.point in avoid:
                    raise IntentError(f"{where}: the point {intent.point!r} is in its avoid set")
            if set(target) == {intent.point}:
                raise IntentError(f"{where}: the target set holds only the point itself")
            resolved.append(PointSet(intent.point, target, avoid, intent.strength))
        elif isinstance(intent, SetSet):
            a, b = members(intent.a, f"{where} set a"), members(intent.b, f"{where} set b")
            if set(a) == set(b):
                raise IntentError(f"{where}: sets a and b are the same items")
            resolved.append(SetSet(a, b, intent.mode, intent.strength))
        else:
            raise IntentError(f"{where}: not an intent: {intent!r}")
    return resolved
