r"""Loss terms of the Modal Fusion Map, as pure functions of tensors.

All functions take the *high-dimensional* dissimilarities (per-block normalised cosine
distances ``\tilde D``, constants without gradient) and the *2-D* layout distances
``\hat D`` (Euclidean, differentiable) of the same pairs, and return a scalar tensor.

* :func:`pearson_loss` -- metric term ``1 - pearson(\tilde D, \hat D)`` over pairs.
* :func:`listwise_kl_loss` -- nonmetric listwise term: for every anchor (row), the KL divergence
  between the softmax of its negated high-D distances to its candidates (columns) and the
  distribution the layout induces over the same candidates (heavy-tailed kernel).
* :func:`triplet_hinge_loss` -- nonmetric alternative: hinge on sampled
  ``(anchor, nearer, farther)`` triples taken from the same candidate matrix.
* :func:`pairwise_distances` -- the 2-D distances these losses consume.
"""

from __future__ import annotations

import torch

__all__ = [
    "listwise_kl_loss",
    "pairwise_distances",
    "pearson_loss",
    "row_targets",
    "triplet_hinge_loss",
]

_EPS = 1e-12
_LOGIT_RANGE = 60.0


def pairwise_distances(
    A: torch.Tensor, B: torch.Tensor | None = None, *, squared: bool = False
) -> torch.Tensor:
    r"""Euclidean distances ``\hat D_{ij} = \|a_i - b_j\|`` of low-dimensional points.

    Computed as ``|a|^2 + |b|^2 - 2 a.b`` (one small matrix product), clamped at ``1e-12``
    so that the square root and its gradient stay finite at coincident points.

    Parameters
    ----------
    A : torch.Tensor, shape (p, q)
    B : torch.Tensor, shape (r, q), optional
        Defaults to ``A``.
    squared : bool
        Return ``\hat D^2`` instead.

    Returns
    -------
    torch.Tensor, shape (p, r)
    """
    B = A if B is None else B
    sq = A.pow(2).sum(1)[:, None] + B.pow(2).sum(1)[None, :] - 2.0 * (A @ B.T)
    sq = sq.clamp_min(_EPS)
    return sq if squared else sq.sqrt()


def pearson_loss(
    d_high: torch.Tensor, d_low: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Metric loss ``1 - \rho(\tilde d, \hat d)`` (Pearson correlation over pairs).

    .. math:: \rho = \frac{\sum_p (\tilde d_p - \bar{\tilde d})(\hat d_p - \bar{\hat d})}
              {\sqrt{\sum_p (\tilde d_p - \bar{\tilde d})^2 \sum_p (\hat d_p - \bar{\hat d})^2}}

    Invariant to any positive affine rescaling of either argument (so the layout's scale is
    free and no stress normalisation is needed).

    Parameters
    ----------
    d_high : torch.Tensor, shape (P,)
        Normalised high-dimensional distances of ``P`` pairs (constants).
    d_low : torch.Tensor, shape (P,)
        Layout distances of the same pairs.
    weights : torch.Tensor, shape (P,), optional
        Non-negative pair weights (weighted correlation); e.g. a 0/1 mask so that whole
        distance matrices (shape (a, c) for all three arguments) can be passed without
        gathering their off-diagonal entries.

    Returns
    -------
    torch.Tensor, scalar, in ``[0, 2]``
    """
    if weights is None:
        a = d_high - d_high.mean()
        b = d_low - d_low.mean()
        denom = (a.pow(2).sum() * b.pow(2).sum()).clamp_min(_EPS).sqrt()
        return 1.0 - (a * b).sum() / denom
    w = weights / weights.sum().clamp_min(_EPS)
    a = d_high - (w * d_high).sum()
    b = d_low - (w * d_low).sum()
    denom = ((w * a.pow(2)).sum() * (w * b.pow(2)).sum()).clamp_min(_EPS).sqrt()
    return 1.0 - (w * a * b).sum() / denom


def row_targets(
    D_high: torch.Tensor, temperature: torch.Tensor | float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Target distributions ``p_{ij} = softmax_j(-\tilde D_{ij} / \tau_i)`` over candidates.

    Logits more than 60 below a row's largest are raised to that floor (``p < 10^{-26}``
    either way), which keeps the arithmetic out of float32's slow denormal range.

    Parameters
    ----------
    D_high : torch.Tensor, shape (a, c)
        High-dimensional distances of ``a`` anchors to ``c`` candidates.
    temperature : float or torch.Tensor of shape (a,)
        Global or per-anchor temperature ``\tau`` (in the units of ``D_high``).
    mask : torch.Tensor of bool, shape (a, c), optional
        ``False`` marks entries that are not candidates (e.g. an anchor itself); they get
        ``p = 0``.

    Returns
    -------
    torch.Tensor, shape (a, c)
        Rows sum to 1 (rows with no candidate are all zero).
    """
    tau = torch.as_tensor(temperature, dtype=D_high.dtype, device=D_high.device)
    if tau.ndim == 1:
        tau = tau[:, None]
    logits = -D_high / tau
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    # Floor at max - 60: keeps exp() out of float32's denormal range (denormal arithmetic is
    # ~10x slower on x86); such targets are < 1e-26 anyway.
    floor = logits.amax(dim=1, keepdim=True) - _LOGIT_RANGE
    logits = (
        torch.maximum(logits, floor)
        if mask is None
        else torch.where(mask, torch.maximum(logits, floor), logits)
    )
    p = torch.softmax(logits, dim=1)
    return torch.nan_to_num(p, nan=0.0)


def listwise_kl_loss(
    p: torch.Tensor,
    D_low_sq: torch.Tensor,
    mask: torch.Tensor | None = None,
    dof: float = 1.0,
    reverse: float = 0.0,
) -> torch.Tensor:
    r"""Listwise rank loss ``mean_i KL(p_i \| q_i)`` over each anchor's candidates.

    The layout's distribution over the candidates of anchor ``i`` uses a Student-t kernel
    with ``\nu`` = ``dof`` degrees of freedom (``\nu = 1``: Cauchy, as in t-SNE):

    .. math::

        q_{ij} = \frac{(1 + \hat D_{ij}^2 / \nu)^{-\nu}}{\sum_l (1 + \hat D_{il}^2 / \nu)^{-\nu}},
        \qquad \mathrm{KL}(p_i \| q_i) = \sum_j p_{ij} (\log p_{ij} - \log q_{ij})

    Putting a candidate that is near in high-D far away in the layout costs a lot (continuity);
    the normalisation over the candidates pushes away those that are far in high-D
    (trustworthiness). Since ``p`` comes from the ranks-preserving softmax of distances,
    the loss is minimal when the layout orders each anchor's candidates as high-D does.

    Parameters
    ----------
    p : torch.Tensor, shape (a, c)
        Target distributions from :func:`row_targets` (constants).
    D_low_sq : torch.Tensor, shape (a, c)
        *Squared* layout distances ``\hat D^2`` of the same anchor-candidate pairs.
    mask : torch.Tensor of bool, shape (a, c), optional
        Candidate mask (as in :func:`row_targets`).
    dof : float
        Degrees of freedom ``\nu`` of the kernel.
    reverse : float
        Weight ``\beta`` of the reverse divergence: the loss becomes
        ``KL(p_i \| q_i) + \beta KL(q_i \| p_i)`` (NeRV's recall and precision terms; the
        second penalises layout neighbours that are far in high-D, i.e. trustworthiness).

    Returns
    -------
    torch.Tensor, scalar
        Mean over anchors with at least one candidate.
    """
    logits = -dof * torch.log1p(D_low_sq / dof)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    log_q = torch.log_softmax(logits, dim=1)
    if mask is not None:
        log_q = log_q.masked_fill(~mask, 0.0)
    with torch.no_grad():
        # sum_j p log p; p = 0 entries contribute 0 (log of a clamped p is finite there).
        neg_entropy = (p * torch.log(p.clamp_min(1e-30))).sum(dim=1)
        valid = p.sum(dim=1) > 0
    kl = neg_entropy - (p * log_q).sum(dim=1)
    if reverse > 0:
        # KL(q || p): mass the layout puts on candidates the target gives none. p is floored
        # at 1e-30 (row_targets keeps real targets above ~1e-26).
        q = log_q.exp() if mask is None else log_q.exp().masked_fill(~mask, 0.0)
        kl = kl + reverse * (q * (log_q - torch.log(p.clamp_min(1e-30)))).sum(dim=1)
    return kl[valid].mean() if bool(valid.any()) else D_low_sq.sum() * 0.0


def triplet_hinge_loss(
    D_high: torch.Tensor,
    D_low: torch.Tensor,
    n_triplets: int,
    generator: torch.Generator,
    mask: torch.Tensor | None = None,
    margin: float = 0.1,
    near_fraction: float = 0.05,
) -> torch.Tensor:
    r"""Triplet rank loss on sampled ``(i, j, l)`` with ``\tilde D_{ij} < \tilde D_{il}``.

    .. math:: L = \frac{1}{T} \sum_{(i,j,l)} \max\left(0,\; m + \frac{\hat D_{ij} - \hat D_{il}}
              {\bar{\hat D}}\right)

    where ``\bar{\hat D}`` is the mean layout distance of the batch (so the margin ``m`` is
    relative and the loss scale-free). ``j`` is drawn among the ``near_fraction`` nearest
    candidates of ``i`` (the neighbourhood the metrics read) and ``l`` uniformly.

    Parameters
    ----------
    D_high : torch.Tensor, shape (a, c)
    D_low : torch.Tensor, shape (a, c)
    n_triplets : int
        Number of triples ``T`` to sample.
    generator : torch.Generator
        Source of randomness for the sampling.
    mask : torch.Tensor of bool, shape (a, c), optional
        Candidate mask; masked entries are never drawn.
    margin : float
        Relative margin ``m``.
    near_fraction : float
        Share of each anchor's candidates that ``j`` is drawn from.

    Returns
    -------
    torch.Tensor, scalar
    """
    a, c = D_high.shape
    big = torch.finfo(D_high.dtype).max
    Dh = D_high if mask is None else D_high.masked_fill(~mask, big)
    n_near = max(1, round(near_fraction * c))
    near = torch.topk(Dh, n_near, dim=1, largest=False).indices
    rows = torch.randint(a, (n_triplets,), generator=generator, device=D_high.device)
    j = near[rows, torch.randint(n_near, (n_triplets,), generator=generator, device=D_high.device)]
    l_idx = torch.randint(c, (n_triplets,), generator=generator, device=D_high.device)
    dj, dl = Dh[rows, j], Dh[rows, l_idx]
    valid = dj < dl
    if mask is not None:
        valid &= mask[rows, l_idx]
    if not bool(valid.any()):
        return D_low.sum() * 0.0
    scale = D_low.detach().mean().clamp_min(_EPS) if mask is None else D_low.detach()[mask].mean()
    diff = (D_low[rows, j] - D_low[rows, l_idx]) / scale.clamp_min(_EPS)
    return torch.relu(margin + diff)[valid].mean()
