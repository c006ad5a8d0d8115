# SPDX-License-Identifier: Apache-2.0
"""The package's one training loop: step bound, seeding, clipping, resume, config checks."""

from __future__ import annotations

import pytest
import torch

from vla_policy.trainer import TrainerConfig, fit, make_optimizer


def _problem(seed: int):
    torch.manual_seed(seed)
    lin = torch.nn.Linear(3, 1)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3

    def step_loss(step: int):
        sel = torch.randint(64, (16,), generator=gen)
        loss = torch.nn.functional.mse_loss(lin(x[sel]), y[sel])
        return loss, {"loss": float(loss.detach())}

    return lin, step_loss


def test_fit_runs_exactly_the_configured_steps_and_learns():
    lin, step_loss = _problem(0)
    seen = []
    fit(lin.parameters(), step_loss, TrainerConfig(steps=300, lr=5e-2),
        on_step=lambda s, lg: seen.append((s, lg)))
    assert [s for s, _ in seen] == list(range(1, 301))
    assert seen[-1][1]["loss"] < 0.01 * seen[0][1]["loss"]
    assert torch.allclose(lin.weight, torch.tensor([[1.0, -2.0, 0.5]]), atol=0.05)


def test_fit_is_reproducible_and_resumable():
    cfg = TrainerConfig(steps=40, lr=1e-2, seed=3)
    a, la = _problem(3)
    fit(a.parameters(), la, cfg)
    b, lb = _problem(3)
    opt = fit(b.parameters(), lb, TrainerConfig(steps=25, lr=1e-2, seed=3))
    fit(b.parameters(), lb, cfg, optimizer=opt, start_step=25)  # the resumed rest
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    c, lc = _problem(4)
    fit(c.parameters(), lc, cfg)
    assert not torch.equal(a.weight, c.weight)


def test_grad_clip_bounds_the_update():
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)

    def huge(step: int):
        return (lin.weight * 1e6).sum()

    cfg = TrainerConfig(steps=1, lr=1.0, optimizer="adamw", grad_clip=1e-3)
    opt = make_optimizer(lin.parameters(), cfg)
    assert isinstance(opt, torch.optim.AdamW)
    grads = []
    fit(lin.parameters(), huge, cfg, optimizer=opt,
        on_step=lambda s, lg: grads.append(lin.weight.grad.norm()))
    assert float(grads[0]) == pytest.approx(1e-3, rel=1e-3)


def test_fit_trains_under_no_grad():
    lin, step_loss = _problem(0)
    w0 = lin.weight.clone()
    with torch.no_grad():
        fit(lin.parameters(), step_loss, TrainerConfig(steps=3, lr=1e-2))
    assert not torch.equal(w0, lin.weight)


@pytest.mark.parametrize("bad", [dict(steps=-1), dict(steps=1.5), dict(lr=0.0), dict(weight_decay=-1.0),
                                 dict(optimizer="sgd"), dict(grad_clip=0.0)])
def test_config_rejects_bad_values(bad):
    kw = {"steps": 10, "lr": 1e-3, **bad}
    with pytest.raises(ValueError):
        TrainerConfig(**kw)
