"""Input validation shared by projections (baselines, MFM) and projection metrics.

Every public entry point that takes embeddings or 2-D layouts runs its inputs through these
helpers, so all of them fail the same way, early, and with a message that says what to fix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "as_matrix",
    "cast_finite",
    "check_enough_points",
    "check_layout",
    "check_modalities",
    "check_nonzero_rows",
    "check_real_dtype",
    "nonfinite_message",
]


def check_real_dtype(X: np.ndarray, name: str = "X") -> None:
    """Refuse arrays whose dtype is not bool, integer or real floating.

    The one dtype rule of every entry point (``fit`` and ``transform`` alike): bool, int and
    float arrays are numbers and are cast, as scikit-learn's ``check_array`` casts them;
    object, string, complex, datetime and structured arrays are refused.

    Parameters
    ----------
    X : numpy.ndarray, any shape
    name : str
        Name used in error messages.

    Raises
    ------
    ValueError
        Naming ``name`` and the dtype.
    """
    dtype = X.dtype
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):  # object too
        raise ValueError(f"{name} must be a numeric array, got dtype {dtype}")
    if np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued, got dtype {dtype}")


def nonfinite_message(
    name: str,
    rows: np.ndarray,
    n_rows: int | None = None,
    *,
    overflow: DTypeLike | None = None,
) -> str:
    """Message for rows that are not finite: NaN/inf in the input, or values that overflow.

    Parameters
    ----------
    name : str
        Name of the input.
    rows : numpy.ndarray of int, shape (r,)
        The offending rows, ascending (``r >= 1``).
    n_rows : int, optional
        Rows of the whole input: the message says ``"in r of n_rows rows (first at row i)"``;
        without it (a streamed input), ``"at row i"``.
    overflow : dtype, optional
        The floating dtype that finite input values did not fit (they became inf when cast);
        ``None`` when the input itself holds NaN or inf.

    Returns
    -------
    str
        The message of the ``ValueError`` to raise.
    """
    first = int(rows[0])
    where = (
        f"at row {first}"
        if n_rows is None
        else f"in {len(rows)} of {n_rows} rows (first at row {first})"
    )
    if overflow is None:
        return f"{name} contains NaN or inf {where}"
    info = np.finfo(overflow)
    return (
        f"{name} has values that exceed {info.dtype}'s range (max ~{info.max:.2g}) {where}: "
        f"finite, but not representable as {info.dtype}; scale the input down"
    )


def cast_finite(X: np.ndarray, name: str = "X", *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """``X`` cast to a C-contiguous ``dtype`` array, refusing rows that are not finite there.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
        Bool, integer or real floating (see :func:`check_real_dtype`).
    name : str
        Name used in error messages.
    dtype : dtype
        Floating dtype of the result.

    Returns
    -------
    numpy.ndarray, shape (n, d)

    Raises
    ------
    ValueError
        If rows hold NaN/inf or, failing that, finite values beyond ``dtype``'s range (e.g.
        ``1e39`` cast to float32); see :func:`nonfinite_message`.
    """
    with np.errstate(over="ignore"):  # overflow is reported below, by name
        arr = np.ascontiguousarray(X, dtype=dtype)
    finite_rows = np.isfinite(arr).all(axis=1)
    if not finite_rows.all():
        bad = np.flatnonzero(~finite_rows)
        in_input = bad[~np.isfinite(np.asarray(X)[bad]).all(axis=1)]
        if in_input.size:  # NaN/inf in the data comes first: it is the real problem there
            raise ValueError(nonfinite_message(name, in_input, arr.shape[0]))
        raise ValueError(nonfinite_message(name, bad, arr.shape[0], overflow=dtype))
    return arr


def as_matrix(X: ArrayLike, name: str = "X", *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """Return ``X`` as a finite, 2-D, C-contiguous float array.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Real-valued matrix (bool, int and float inputs are accepted and cast).
    name : str
        Name used in error messages.
    dtype : dtype
        Floating dtype of the result (``float64`` by default).

    Returns
    -------
    numpy.ndarray, shape (n, d)

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, has no rows or columns, is not real-valued (see
        :func:`check_real_dtype`), contains NaN/inf, or holds finite values beyond ``dtype``'s
        range (see :func:`cast_finite`; the message says how many rows are affected and the
        first such row).
    """
    arr = np.asarray(X)
    check_real_dtype(arr, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    return cast_finite(arr, name, dtype=dtype)


def check_modalities(
    X_image: ArrayLike,
    X_text: ArrayLike,
    names: tuple[str, str] = ("X_image", "X_text"),
    *,
    dtype: DTypeLike = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two embedding matrices that must live in the same space.

    Parameters
    ----------
    X_image : array_like, shape (n, d)
    X_text : array_like, shape (m, d)
    names : (str, str)
        Names used in error messages.
    dtype : dtype
        Floating dtype of the results.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Both matrices, validated by :func:`as_matrix`.

    Raises
    ------
    ValueError
        If either matrix is invalid, or their numbers of columns differ (both are named).
    """
    A = as_matrix(X_image, names[0], dtype=dtype)
    B = as_matrix(X_text, names[1], dtype=dtype)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of columns: "
            f"{names[0]} has d={A.shape[1]}, {names[1]} has d={B.shape[1]}"
        )
    return A, B


def check_layout(
    Y: ArrayLike, n_rows: int, name: str = "Y", *, n_components: int | None = None
) -> np.ndarray:
    """Validate a low-dimensional layout that must have one row per input point.

    Parameters
    ----------
    Y : array_like, shape (n_rows, p)
        Layout coordinates.
    n_rows : int
        Expected number of rows (points of the matching high-dimensional matrix).
    name : str
        Name used in error messages.
    n_components : int, optional
        Expected number of columns ``p`` (e.g. 2); any ``p`` is accepted when ``None``.

    Returns
    -------
    numpy.ndarray, shape (n_rows, p), float64
    """
    arr = as_matrix(Y, name)
    if arr.shape[0] != n_rows:
        raise ValueError(
            f"{name} must have one row per point: expected {n_rows} rows, got {arr.shape[0]}"
        )
    if n_components is not None and arr.shape[1] != n_components:
        raise ValueError(f"{name} must have {n_components} columns, got {arr.shape[1]}")
    return arr


def check_nonzero_rows(X: np.ndarray, name: str = "X") -> None:
    """Raise ``ValueError`` if any row of ``X`` has zero norm (cosine is undefined there)."""
    zero = ~np.any(X != 0, axis=1)
    if zero.any():
        bad = np.flatnonzero(zero)
        raise ValueError(
            f"{name} has {bad.size} all-zero rows (first at row {int(bad[0])}); "
            "cosine distance is undefined for them"
        )


def check_enough_points(n_candidates: int, k: int, what: str = "points") -> None:
    """Check that a k-neighbourhood over ``n_candidates`` candidates is well defined.

    The Venna–Kaski normalisation ``2 / (n k (2m - 3k - 1))`` needs ``k < m`` and
    ``2m - 3k - 1 > 0`` where ``m`` is the number of candidate neighbours.

    Parameters
    ----------
    n_candidates : int
        The ``m`` of the formula: the number of points ``n`` within one set (each point has
        ``n - 1`` candidate neighbours besides itself), or ``|B|`` across modalities.
    k : int
        Neighbourhood size.
    what : str
        Description of the candidates, used in error messages.

    Raises
    ------
    ValueError
        If ``k`` is not a positive integer, ``k >= m`` or ``2m - 3k - 1 <= 0``.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    m = int(n_candidates)
    if k >= m:
        raise ValueError(f"fewer {what} than k+1: k={k} needs at least {k + 1} {what}, got {m}")
    if 2 * m - 3 * k - 1 <= 0:
        raise ValueError(
            f"k={k} is too large for {m} {what}: the Venna-Kaski normalisation "
            f"needs 2m - 3k - 1 > 0 (here {2 * m - 3 * k - 1}); use k < {(2 * m - 1) / 3:.1f}"
        )


def check_random_state(random_state: object) -> None:
    """Check a seed: None or an integer in ``[0, 2**32 - 1]`` (what every method accepts).

    Raises
    ------
    ValueError
        Anything else, named (NumPy's and scikit-learn's own errors do not say which
        parameter was wrong).
    """
    if random_state is None:
        return
    if (
        isinstance(random_state, bool)
        or not isinstance(random_state, int | np.integer)
        or not 0 <= random_state < 2**32
    ):
        raise ValueError(
            f"random_state must be None or an integer in [0, 2**32 - 1], got {random_state!r}"
        )
