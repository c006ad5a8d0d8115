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


def test_relevance_pool_favours_candidates_on_relevant_points_and_gates_far_ones():
    """Step 5 (model.py): with a silent head, the score is the pooled 1-Align relevance alone."""
    torch.manual_seed(0)
    model = PolicyModel(PolicyConfig.from_variant("SR", **SMALL)).eval()
    assert model.cfg.relevance_pool
    with torch.no_grad():  # silence the learned parts: the scores come from CLIP's grounding
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
        model.text_q.weight.zero_()
    batch = make_batch(4, seed=3)
    far = batch["candidates"][:, :1].clone()
    far[..., :3] = torch.tensor([2.0, 2.0, 2.0])  # 2 m from every point
    batch["candidates"] = torch.cat([batch["candidates"], far], 1)
    batch["cand_mask"] = torch.cat([batch["cand_mask"], torch.ones(4, 1, dtype=torch.bool)], 1)
    with torch.no_grad():
        out = model(batch)
    r = out["relevance"]
    pool = out["relevance_pool"]  # (B, C)
    torch.testing.assert_close(pool[:, -1], r.min(1).values)  # gated: the lowest relevance
    on_target = batch["label"] // 3  # the instruction's object owns candidates 3*t .. 3*t+2
    assert (out["logits"].argmax(-1) // 3 == on_target).all()
    assert (out["logits"][:, -1] < out["logits"][:, :-1].max(-1).values).all()


def test_relevance_pool_needs_two_stage_and_old_configs_load_without_it():
    with pytest.raises(ValueError, match="relevance_pool"):
        PolicyConfig(two_stage=False, align_loss=False, relevance_pool=True)
    old = PolicyConfig.from_variant("SR", **SMALL).to_dict()
    old.pop("relevance_pool")
    old.pop("relevance_pool_radius_m")
    cfg = PolicyConfig.from_dict(old)  # a checkpoint saved before the field existed
    assert not cfg.relevance_pool
    assert not hasattr(PolicyModel(cfg), "pool_weight")
