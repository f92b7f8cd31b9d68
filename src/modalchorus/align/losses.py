"""Loss terms of an alignment run (pure functions on unit-norm embeddings).

All inputs are rows of L2-normalised embeddings; similarities are cosines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_set_loss(
    point: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Contrastive pull of one point toward a target set and away from negatives.

    ``-log( sum_t exp(s_t / tau) / (sum_t exp(s_t / tau) + sum_n exp(s_n / tau)) )`` with
    ``s`` the cosine of the point to each target ``t`` or negative ``n``.

    Parameters
    ----------
    point : torch.Tensor, shape (d,)
    targets : torch.Tensor, shape (t, d), t >= 1
    negatives : torch.Tensor, shape (n, d), n >= 1
    temperature : float
        Softmax temperature ``tau`` > 0.

    Returns
    -------
    torch.Tensor
        Scalar, >= 0; near 0 once the point is much closer to the targets.
    """
    s_t = targets @ point / temperature
    s_n = negatives @ point / temperature
    return torch.logsumexp(torch.cat([s_t, s_n]), 0) - torch.logsumexp(s_t, 0)


def centroid(rows: torch.Tensor) -> torch.Tensor:
    """Unit mean direction of rows. Shape (n, d) -> (d,)."""
    return F.normalize(rows.mean(0), dim=0, eps=1e-12)


def set_align_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(centroid(a), centroid(b))``: pull two sets' centroids together.

    Parameters
    ----------
    a : torch.Tensor, shape (p, d)
    b : torch.Tensor, shape (q, d)
    """
    return 1.0 - centroid(a) @ centroid(b)


def set_separate_loss(a: torch.Tensor, b: torch.Tensor, margin: float) -> torch.Tensor:
    """Hinge ``max(0, cos(centroid(a), centroid(b)) - margin)``: push centroids apart.

    Parameters
    ----------
    a : torch.Tensor, shape (p, d)
    b : torch.Tensor, shape (q, d)
    margin : float
        Cosine below which the sets count as separated.
    """
    return torch.relu(centroid(a) @ centroid(b) - margin)


def preservation_loss(moved: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos`` between items' new and original embeddings.

    Parameters
    ----------
    moved, reference : torch.Tensor, shape (n, d)
        Row ``i`` of each is the same item after and before tuning.
    """
    return (1.0 - (moved * reference).sum(1)).mean()


def relation_preservation_loss(
    moved: torch.Tensor,
    reference: torch.Tensor,
    anchors_moved: torch.Tensor,
    anchors_reference: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """KL divergence keeping items' softmax similarity profile over anchor items.

    ``mean_i KL(p_i || q_i)`` with ``p_i = softmax(r_i A_r^T / tau)`` before and
    ``q_i = softmax(z_i A_z^T / tau)`` after tuning: the zero-shot logits of the items over
    the anchors (e.g. class prompts), which a small embedding move can flip.

    Parameters
    ----------
    moved, reference : torch.Tensor, shape (n, d)
        Items after and before tuning.
    anchors_moved, anchors_reference : torch.Tensor, shape (a, d)
        Anchor items after and before tuning.
    temperature : float
    """
    log_p = torch.log_softmax(reference @ anchors_reference.T / temperature, dim=1)
    log_q = torch.log_softmax(moved @ anchors_moved.T / temperature, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(1).mean()
