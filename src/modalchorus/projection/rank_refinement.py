"""Smoothed k-NN trustworthiness and continuity, as a loss on a 2-D layout.

The MFM's listwise terms match whole neighbour distributions; this loss looks only at the
boundary the quality metrics score, the ``k`` nearest. For one relation (anchors of one
modality against a pool of one modality) and each anchor ``a``:

* **missed** (continuity): each high-dimensional ``k``-nearest ``j`` that ranks beyond ``k``
  in 2-D costs ``relu(s(a, j) - k)``;
* **intruding** (trustworthiness): each current 2-D ``k``-nearest ``u`` costs
  ``relu(r(a, u) - k) * relu(k + 1 - s(a, u))``: its high-dimensional rank excess ``r - k``,
  times how deep inside the 2-D neighbourhood it sits.

``s`` is a soft 2-D rank, ``0.5 + sum_l sigmoid((d(a, j) - d(a, l)) / tau_a)`` over the pool,
with ``tau_a = tau x`` the anchor's distance to its ``k``-th 2-D neighbour; ``r`` is exact.
Both sums carry the Venna-Kaski normalisation ``2 / (k (2 q - 3 k - 1))``, so ``missed`` is a
smooth ``1 - C``. Per anchor the cost is two row sorts of the pool plus ``O(k x window)``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["rank_refinement_loss", "argsort_rows", "soft_ranks", "sorted_rows"]


def sorted_rows(d: torch.Tensor) -> torch.Tensor:
    """Each row of ``d`` sorted ascending, detached (NumPy's sort is ~4x torch's on CPU)."""
    d = d.detach()
    if d.device.type != "cpu":
        return torch.sort(d, dim=1).values
    return torch.from_numpy(np.sort(d.numpy(), axis=1))


def argsort_rows(d: torch.Tensor) -> torch.Tensor:
    """Column order that sorts each row of ``d`` ascending (NumPy's is ~1.7x torch's on CPU)."""
    d = d.detach()
    if d.device.type != "cpu":
        return torch.argsort(d, dim=1)
    return torch.from_numpy(np.argsort(d.numpy(), axis=1))


def soft_ranks(
    d: torch.Tensor, query: torch.Tensor, tau: torch.Tensor, window: int
) -> torch.Tensor:
    """Soft ranks of chosen pool points among each anchor's pool.

    Parameters
    ----------
    d : torch.Tensor, shape (p, q)
        Layout distances from each anchor to its pool (differentiable; ``inf`` marks
        excluded points).
    query : torch.Tensor, shape (p, c), int64
        Pool columns to rank.
    tau : torch.Tensor, shape (p, 1)
        Sigmoid temperature of each anchor.
    window : int
        Pool points smoothed per query: the ``window`` nearest to it in distance from the
        anchor. Nearer ones count as 1, farther ones as 0.

    Returns
    -------
    torch.Tensor, shape (p, c)
        ``0.5 + sum_l sigmoid((d_query - d_l) / tau)`` over the pool (the query's own entry
        adds the other 0.5, so the nearest point ranks ~1). Differentiable in the query's
        distance and its window's: a missed neighbour is drawn in while the points it
        must pass are pushed out, which keeps the map from shrinking.
    """
    p, q = d.shape
    d_query = torch.gather(d, 1, query)
    with torch.no_grad():
        order = argsort_rows(d)
        sorted_d = torch.gather(d, 1, order)
        closer = torch.searchsorted(sorted_d, d_query.contiguous())
        start = (closer - window // 2).clamp(0, max(q - window, 0))
        positions = start[:, :, None] + torch.arange(min(window, q), device=d.device)
        members = torch.gather(order, 1, positions.reshape(p, -1))
    # An excluded (inf) member adds sigmoid(-inf) = 0 and gets no gradient.
    d_members = torch.gather(d, 1, members).view(positions.shape)
    smooth = torch.sigmoid((d_query[:, :, None] - d_members) / tau[:, :, None])
    return 0.5 + start + smooth.sum(-1)


def rank_refinement_loss(
    y_anchor: torch.Tensor,
    y_pool: torch.Tensor,
    x_anchor: torch.Tensor,
    x_pool: torch.Tensor,
    k: int,
    *,
    self_columns: torch.Tensor | None = None,
    trust_weight: float = 0.1,
    tau: float = 0.1,
    window: int = 128,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smoothed missed- and intruding-neighbour losses of one relation.

    Parameters
    ----------
    y_anchor : torch.Tensor, shape (p, 2)
        Layout positions of the anchors (differentiable).
    y_pool : torch.Tensor, shape (q, 2)
        Layout positions of the pool (differentiable).
    x_anchor : torch.Tensor, shape (p, d)
        L2-normalised embeddings of the anchors.
    x_pool : torch.Tensor, shape (q, d)
        L2-normalised embeddings of the pool.
    k : int
        Neighbourhood size scored; needs ``q > k + 1`` and ``2 q > 3 k + 1``.
    self_columns : torch.Tensor, shape (p,), int64, optional
        Column of each anchor in the pool when both are the same modality (excluded).
    trust_weight : float
        Weight of the intruding term in the returned total.
    tau : float
        Sigmoid temperature as a fraction of the anchor's ``k``-th 2-D neighbour distance.
    window : int
        Pool points smoothed per ranked point (see :func:`soft_ranks`).

    Returns
    -------
    total : torch.Tensor, scalar
        ``missed + trust_weight * intruding``, each summed over anchors and normalised.
    missed : torch.Tensor, scalar
        The continuity part alone (detached): a smooth ``1 - C`` of these anchors.
    """
    p, q = y_anchor.shape[0], y_pool.shape[0]
    d = torch.cdist(y_anchor, y_pool)
    with torch.no_grad():
        d_high = 1.0 - x_anchor @ x_pool.T
    if self_columns is not None:
        rows = torch.arange(p, device=d.device)
        d = d.index_put((rows, self_columns), torch.tensor(float("inf"), device=d.device))
        d_high[rows, self_columns] = float("inf")
    with torch.no_grad():
        high_knn = torch.topk(d_high, k, dim=1, largest=False).indices
        low = torch.topk(d, k, dim=1, largest=False)
        temp = tau * low.values[:, -1:].clamp_min(1e-12)
        intruders = low.indices
        # High-D rank of each 2-D neighbour: 1 + how many pool points are nearer.
        d_intruders = torch.gather(d_high, 1, intruders).contiguous()
        high_rank = 1 + torch.searchsorted(sorted_rows(d_high), d_intruders)
    ranks = soft_ranks(d, torch.cat([high_knn, intruders], 1), temp, window)
    norm = 2.0 / (p * k * (2 * q - 3 * k - 1))
    missed = norm * torch.relu(ranks[:, :k] - k).sum()
    excess = torch.relu(high_rank - k).to(d.dtype)
    intruding = norm * (excess * torch.relu(k + 1 - ranks[:, k:])).sum()
    return missed + trust_weight * intruding, missed.detach()
