"""The Modal Fusion Map's training objective on a mini-batch, and what it needs.

The pieces :class:`~modalchorus.projection.mfm.ModalFusionMap` trains with: the cross- and
intra-modal k-NN that anchor the batches, the block normaliser applied to torch tensors,
the loss terms of one batch (metric, nonmetric, intra-modal) and the PCA warm start.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from modalchorus.projection.distances import BlockNormaliser
from modalchorus.projection.losses import (
    listwise_kl_loss,
    pairwise_distances,
    pearson_loss,
    row_targets,
    triplet_hinge_loss,
)
from modalchorus.projection.sampling import knn_cosine

__all__ = [
    "BLOCK_NAMES",
    "TorchNormaliser",
    "TrainState",
    "batch_losses",
    "cross_knn",
    "intra_knn",
    "pca_pretrain",
]

#: Names of the merged matrix's blocks, in the order of their ids below.
BLOCK_NAMES = ("II", "TT", "IT")
_II, _TT, _IT = 0, 1, 2


def cross_knn(FI: np.ndarray, FT: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stacked cross-modal k-NN: rows of images point to texts and vice versa (stacked ids)."""
    nf = FI.shape[0]
    i2t, d_i2t = knn_cosine(FI, FT, k)
    t2i, d_t2i = knn_cosine(FT, FI, k)
    return np.concatenate([i2t + nf, t2i]), np.concatenate([d_i2t, d_t2i])


def intra_knn(FI: np.ndarray, FT: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Stacked intra-modal k-NN (stacked ids)."""
    nf = FI.shape[0]
    i2i, d_i2i = knn_cosine(FI, FI, k, exclude_self=True)
    t2t, d_t2t = knn_cosine(FT, FT, k, exclude_self=True)
    return np.concatenate([i2i, t2t + nf]), np.concatenate([d_i2i, d_t2t])


class TorchNormaliser:
    """A :class:`BlockNormaliser` applied to torch tensors of one block's distances."""

    def __init__(self, norm: BlockNormaliser, device: torch.device) -> None:
        self.method = norm.method
        if norm.method == "quantile":
            self.knots = [
                tuple(torch.as_tensor(a, dtype=torch.float32, device=device) for a in norm.knots[b])
                for b in BLOCK_NAMES
            ]
        else:
            self.affine = [tuple(float(v) for v in norm.affine[b]) for b in BLOCK_NAMES]

    def __call__(self, D: torch.Tensor, block: int) -> torch.Tensor:
        if self.method == "quantile":
            xp, fp = self.knots[block]
            return torch_interp(D, xp, fp)
        offset, scale = self.affine[block]
        return (D - offset) / scale


def torch_interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``numpy.interp`` for torch (clamped outside ``[xp[0], xp[-1]]``)."""
    shape = x.shape
    x = x.reshape(-1).contiguous()
    i = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    t = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0.0, 1.0)
    return (f0 + t * (f1 - f0)).reshape(shape)


class TrainState:
    """Tensors that every training step reads.

    Parameters
    ----------
    X : torch.Tensor, shape (n + m, d)
        L2-normalised training embeddings, images first.
    Z : torch.Tensor, shape (n + m, d)
        The network's inputs: the same rows, centred per modality and scaled.
    n_image : int
        Number of image rows ``n``.
    sigma_cross, sigma_intra : torch.Tensor, shape (n + m,)
        Per-row bandwidths of the cross- and intra-modal target distributions.
    normaliser : TorchNormaliser
        The fitted per-block distance normalisation.
    """

    def __init__(
        self,
        X: torch.Tensor,
        Z: torch.Tensor,
        n_image: int,
        sigma_cross: torch.Tensor,
        sigma_intra: torch.Tensor,
        normaliser: TorchNormaliser,
    ) -> None:
        self.X, self.Z, self.n_image = X, Z, n_image
        self.sigma_cross, self.sigma_intra = sigma_cross, sigma_intra
        self.normaliser = normaliser


def batch_losses(
    net: nn.Module,
    state: TrainState,
    idx: torch.Tensor,
    weights: dict[str, float],
    nonmetric: str,
    dof: float,
    cross_dof: float,
    precision_weight: float,
    gen: torch.Generator,
) -> dict[str, torch.Tensor]:
    """The loss terms of one batch.

    Parameters
    ----------
    net : torch.nn.Module
        Maps rows of ``state.Z`` to 2-D.
    state : TrainState
    idx : torch.Tensor, shape (b,), int64
        Stacked training rows of the batch, sorted (images first).
    weights : dict
        ``metric``, ``nonmetric`` and ``intra`` weights; a term of weight 0 is skipped.
    nonmetric, dof, cross_dof, precision_weight
        As the :class:`~modalchorus.projection.mfm.ModalFusionMap` parameters.
    gen : torch.Generator
        Draws the triplets of ``nonmetric="triplet"``.

    Returns
    -------
    dict of str to torch.Tensor
        Unweighted scalar loss per computed term.
    """
    X = state.X[idx]
    Y = net(state.Z[idx])
    n_img = int((idx < state.n_image).sum())
    b = idx.numel()
    img, txt = slice(0, n_img), slice(n_img, b)
    with torch.no_grad():
        Dn = (1.0 - X @ X.T).clamp_(0.0, 2.0)
        for rows, cols, block in ((img, img, _II), (txt, txt, _TT), (img, txt, _IT)):
            Dn[rows, cols] = state.normaliser(Dn[rows, cols], block)
        Dn[txt, img] = Dn[img, txt].T
        off_diag = ~torch.eye(b, dtype=torch.bool, device=Dn.device)
    D_sq = pairwise_distances(Y, squared=True)
    terms: dict[str, torch.Tensor] = {}
    if weights["metric"] > 0:
        # Every other row: all pair types, half the cost (the rows are a random sample).
        rows = slice(0, b, 2)
        terms["metric"] = pearson_loss(Dn[rows], D_sq[rows].sqrt(), off_diag[rows].to(Dn.dtype))
    if weights["nonmetric"] > 0 and 0 < n_img < b:
        parts = []
        for rows, cols in ((img, txt), (txt, img)):
            Dh = Dn[rows, cols]
            if nonmetric == "listwise":
                p = row_targets(Dh, state.sigma_cross[idx[rows]])
                parts.append(
                    listwise_kl_loss(p, D_sq[rows, cols], dof=cross_dof, reverse=precision_weight)
                )
            else:
                Dl = D_sq[rows, cols].sqrt()
                parts.append(triplet_hinge_loss(Dh, Dl, 4 * Dh.shape[0], gen))
        terms["nonmetric"] = 0.5 * (parts[0] + parts[1])
    if weights["intra"] > 0:
        parts = []
        for rows in (img, txt):
            if rows.stop - rows.start < 2:
                continue
            mask = off_diag[rows, rows]
            p = row_targets(Dn[rows, rows], state.sigma_intra[idx[rows]], mask)
            parts.append(listwise_kl_loss(p, D_sq[rows, rows], mask, dof=dof))
        if parts:
            terms["intra"] = sum(parts) / len(parts)
    return terms


def pca_pretrain(
    net: nn.Module, Z: torch.Tensor, steps: int, gen: torch.Generator, lr: float
) -> None:
    """Regress ``net`` onto the top principal components of ``Z`` (mean squared error).

    Targets are scaled so that their first coordinate has standard deviation 1; batches of
    up to 512 rows drawn with ``gen``.
    """
    if steps <= 0:
        return
    sample = Z[torch.randperm(Z.shape[0], generator=gen)[:5000]].double()
    mean = sample.mean(0, keepdim=True)
    _, vecs = torch.linalg.eigh((sample - mean).T @ (sample - mean))
    n_out = net(Z[:1]).shape[1]
    comps = vecs[:, -n_out:].flip(1).float()  # eigenvalues ascend: last = largest
    mean = mean.float()
    target_all = (Z - mean) @ comps
    target_all = target_all / target_all[:, 0].std().clamp_min(1e-12)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        b = torch.randint(Z.shape[0], (min(512, Z.shape[0]),), generator=gen)
        loss = (net(Z[b]) - target_all[b]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
