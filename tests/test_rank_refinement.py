"""The smoothed k-NN trustworthiness / continuity loss behind the MFM's refinement phase."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from modalchorus.metrics import projection_report
from modalchorus.projection.rank_refinement import rank_refinement_loss, rank_table, soft_ranks

K = 5


def exact_soft_ranks(d: torch.Tensor, query: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """The unwindowed sum ``0.5 + sum_l sigmoid((d_q - d_l) / tau)`` over every pool point."""
    d_query = torch.gather(d, 1, query)
    return 0.5 + torch.sigmoid((d_query[:, :, None] - d[:, None, :]) / tau[:, :, None]).sum(-1)


@pytest.fixture()
def distances() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    d = (torch.rand(6, 300, generator=gen) * 5).requires_grad_()
    query = torch.randint(300, (6, 8), generator=gen)
    return d, query, torch.full((6, 1), 0.2)


def test_soft_ranks_with_a_full_window_are_the_exact_sum(distances):
    d, query, tau = distances
    exact = exact_soft_ranks(d, query, tau)
    ranks = soft_ranks(d, query, tau, window=d.shape[1])
    assert torch.allclose(ranks, exact, rtol=1e-5)
    (g_exact,) = torch.autograd.grad(exact.sum(), d)
    (g_ranks,) = torch.autograd.grad(ranks.sum(), d)
    assert torch.allclose(g_ranks, g_exact, atol=1e-5)


def test_soft_ranks_with_a_narrow_window_stay_close(distances):
    d, query, tau = distances
    exact = exact_soft_ranks(d, query, tau)
    ranks = soft_ranks(d, query, tau, window=64).detach()
    assert float(((ranks - exact.detach()).abs() / exact.detach()).max()) < 0.05


def test_soft_ranks_skip_excluded_points():
    d = torch.tensor([[1.0, 2.0, float("inf"), 3.0]])
    ranks = soft_ranks(d, torch.tensor([[3, 0]]), torch.tensor([[1e-4]]), window=4)
    assert ranks.tolist() == [[3.0, 1.0]]  # the excluded point never counts


def test_soft_ranks_beyond_the_horizon_are_unbiased_estimates():
    gen = torch.Generator().manual_seed(3)
    # Squared uniforms: the density of distances falls with distance, as in a layout.
    d = (torch.rand(4, 2000, generator=gen) ** 2 * 10).requires_grad_()
    query = torch.argsort(d.detach(), dim=1)[:, [5, 100, 900, 1500]]  # ranks 6, 101, 901, 1501
    tau = torch.full((4, 1), 0.05)
    exact = exact_soft_ranks(d, query, tau)
    (g_exact,) = torch.autograd.grad(exact[:, 2:].sum(), d)
    draws = [soft_ranks(d, query, tau, window=64, horizon=256, generator=gen) for _ in range(200)]
    # Within the horizon nothing changes; beyond it, the draws average to the full sum.
    for ranks in draws[:3]:
        assert torch.allclose(ranks[:, :2], soft_ranks(d, query, tau, window=64)[:, :2])
    mean = torch.stack(draws).mean(0)
    exact = exact.detach()
    assert float(((mean[:, 2:].detach() - exact[:, 2:]).abs() / exact[:, 2:]).max()) < 0.05
    (g_mean,) = torch.autograd.grad(mean[:, 2:].sum(), d)
    pulled = torch.gather(g_mean, 1, query[:, 2:]) / torch.gather(g_exact, 1, query[:, 2:])
    assert float((pulled - 1).abs().max()) < 0.25  # the far query is pulled in as hard


def brute_force_ranks(x_anchor, x_pool, self_columns=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 +`` the number of pool points strictly nearer for every (anchor, pool) pair, and
    the distances."""
    d = 1.0 - x_anchor @ x_pool.T
    if self_columns is not None:
        d[torch.arange(len(d)), self_columns] = float("inf")
    return 1 + (d[:, None, :] < d[:, :, None]).sum(-1).float(), d


@pytest.mark.parametrize("intra", [False, True])
def test_rank_table_is_exact_near_and_interpolates_far(intra):
    gen = torch.Generator().manual_seed(4)
    x_pool = torch.nn.functional.normalize(torch.randn(600, 8, generator=gen), dim=1)
    x_anchor = x_pool[:40] if intra else x_pool[:40].flip(1)
    self_columns = torch.arange(40) if intra else None
    table = rank_table(x_anchor, x_pool, self_columns=self_columns, exact=20, n_grid=32)
    truth, d = brute_force_ranks(x_anchor, x_pool, self_columns)
    rows = torch.arange(40)
    assert torch.equal(table.columns, torch.topk(d, 20, dim=1, largest=False).indices)
    if intra:
        assert not (table.columns == rows[:, None]).any()
    columns = torch.argsort(d, dim=1)[:, : 600 - int(intra)]  # every pool point
    ranks = table.ranks(rows, columns, torch.gather(d, 1, columns))
    expected = torch.gather(truth, 1, columns)
    assert torch.equal(ranks[:, :20], expected[:, :20])
    assert float(((ranks - expected).abs() / expected).max()) < 0.12


def random_pair(seed: int = 0, n: int = 60, m: int = 90, d: int = 12):
    rng = np.random.default_rng(seed)
    XI, XT = (rng.normal(size=(size, d)).astype(np.float32) for size in (n, m))
    XI /= np.linalg.norm(XI, axis=1, keepdims=True)
    XT /= np.linalg.norm(XT, axis=1, keepdims=True)
    YI, YT = (rng.normal(size=(size, 2)).astype(np.float32) for size in (n, m))
    return XI, XT, YI, YT


def test_missed_term_with_hard_ranks_is_one_minus_continuity():
    """With a vanishing temperature the continuity part is exactly ``1 - C`` (Venna-Kaski)."""
    XI, XT, YI, YT = random_pair()
    report = projection_report(XI, XT, YI, YT, ks=(K,))
    t = torch.as_tensor
    _, cross = rank_refinement_loss(t(YI), t(YT), t(XI), t(XT), K, tau=1e-7, window=1000)
    assert float(cross) == pytest.approx(1 - report[f"inter_C_image_to_text@{K}"], abs=1e-5)
    rows = torch.arange(len(XI))
    _, intra = rank_refinement_loss(
        t(YI), t(YI), t(XI), t(XI), K, self_columns=rows, tau=1e-7, window=1000
    )
    assert float(intra) == pytest.approx(1 - report[f"C_image@{K}"], abs=1e-5)
    # Scoring a subset of anchors against a table of the whole relation gives the same.
    table = rank_table(t(XI), t(XI), self_columns=rows, exact=20)
    some = torch.arange(0, len(XI), 3)
    subset = partial(rank_refinement_loss, t(YI)[some], t(YI), t(XI)[some], t(XI), K)
    subset = partial(subset, self_columns=some, tau=1e-7, window=1000)
    _, from_table = subset(table=table, rows=some)
    assert float(from_table) == pytest.approx(float(subset()[1]), abs=1e-6)


def test_a_faithful_layout_costs_nothing_and_a_random_one_does():
    rng = np.random.default_rng(1)
    theta = np.sort(rng.uniform(0, np.pi / 2, size=80)).astype(np.float32)
    # Points on a great circle: cosine distance 1 - cos(|dtheta|) ranks as |dtheta| in 2-D.
    X = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], axis=1)
    Y = np.stack([theta, np.zeros_like(theta)], axis=1)
    t = torch.as_tensor
    rows = torch.arange(80)
    loss = partial(rank_refinement_loss, x_anchor=t(X), x_pool=t(X), k=K, self_columns=rows)
    total, missed = loss(t(Y), t(Y), tau=1e-5)
    assert float(missed) == 0 and float(total) == 0
    shuffled = t(Y[rng.permutation(80)])
    total, missed = loss(shuffled, shuffled)
    assert float(missed) > 0.2 and float(total) > float(missed)


def test_gradient_steps_lower_the_loss():
    XI, XT, YI, YT = random_pair(seed=2)
    Y_image = torch.tensor(YI, requires_grad=True)
    Y_text = torch.tensor(YT, requires_grad=True)
    opt = torch.optim.Adam([Y_image, Y_text], lr=0.05)
    losses = []
    for _ in range(60):
        loss, _ = rank_refinement_loss(Y_image, Y_text, torch.tensor(XI), torch.tensor(XT), K)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]
