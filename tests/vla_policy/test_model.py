# SPDX-License-Identifier: Apache-2.0
"""Two-stage alignment model: variants build, shapes, masks, and a tiny dataset is overfit to 100 %."""

from __future__ import annotations

import pytest
import torch
from synthetic import make_batch

from vla_policy.configuration import VARIANTS, PolicyConfig
from vla_policy.model import PolicyModel

torch.set_num_threads(1)
SMALL = dict(feature_dim=16, d_model=32, num_heads=4, num_layers=1, num_points=128, num_keep=32,
             mgfa_k_keep=16, mgfa_memory=4)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_forward_shapes_and_losses(variant):
    torch.manual_seed(0)
    cfg = PolicyConfig.from_variant(variant, **SMALL)
    model = PolicyModel(cfg)
    batch = make_batch(3)
    batch["cand_mask"][0, -2:] = False
    out = model(batch)
    assert out["logits"].shape == (3, 12)
    assert torch.isinf(out["logits"][0, -2:]).all()
    k = 32 if cfg.two_stage else 128
    assert out["cross_attn"].shape == (3, 12, k)
    loss, logs = model.loss(batch, out)
    assert torch.isfinite(loss)
    assert ("posa" in logs) == cfg.posa
    assert ("align" in logs) == cfg.align_loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_padded_points_do_not_change_scores():
    torch.manual_seed(0)
    model = PolicyModel(PolicyConfig.from_variant("SR", **SMALL)).eval()
    batch = make_batch(2)
    batch["point_mask"][:, 100:] = False
    a = model(batch)["logits"]
    batch["xyz"][:, 100:] = torch.rand(2, 28, 3)
    batch["features"][:, 100:] = torch.randn(2, 28, 16)
    b = model(batch)["logits"]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="d_model"):
        PolicyConfig(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="attention"):
        PolicyConfig(attention="flash")
    with pytest.raises(ValueError, match="unknown policy variant"):
        PolicyConfig.from_variant("SR++")
    cfg = PolicyConfig.from_variant("SR+MGFA", **SMALL)
    assert PolicyConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("variant", ["SR", "BASE"])
def test_overfits_tiny_dataset_to_full_accuracy(variant):
    torch.manual_seed(0)
    cfg = PolicyConfig.from_variant(variant, **SMALL)
    model = PolicyModel(cfg)
    batch = make_batch(8, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    acc = 0.0
    for _ in range(300):
        opt.zero_grad()
        out = model(batch)
        loss, logs = model.loss(batch, out)
        loss.backward()
        opt.step()
        acc = logs["acc"]
        if acc == 1.0 and logs["ce"] < 0.05:
            break
    model.eval()
    with torch.no_grad():
        pred = model(batch)["logits"].argmax(-1)
    assert (pred == batch["label"]).float().mean().item() == 1.0
