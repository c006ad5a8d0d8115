# SPDX-License-Identifier: Apache-2.0
"""Two-stage alignment model: variants build, shapes, masks, and a tiny dataset is overfit to 100 %."""

from __future__ import annotations

import math

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


def test_posa_anchor_and_attention_depend_on_the_pose_orientation():
    """PosA with ``posa_anchor="pose"``: rotate the expert / candidate pose about its position."""
    from vla_policy.model import TARGET_POSE, quat_to_matrix

    torch.manual_seed(0)
    model = PolicyModel(PolicyConfig.from_variant("SR+PosA", **SMALL))
    legacy = PolicyModel(PolicyConfig.from_variant("SR+PosA", posa_anchor="position", **SMALL))
    assert model.cfg.posa_anchor == "pose" and hasattr(model.cross, "anchor_log_sigma")
    assert not hasattr(legacy.cross, "anchor_log_sigma")
    # the anchor is elongated along the TCP closing axis y: 3 cm along y outweighs 3 cm along x
    pts = torch.tensor([[[0.03, 0.0, 0.0], [0.0, 0.03, 0.0]]])
    a = model._anchor(pts, torch.zeros(1, 2, dtype=torch.bool), torch.zeros(1, 3), torch.eye(3)[None])
    assert a[0, 1] > 2 * a[0, 0]
    batch = make_batch(3)
    quat_a = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(3, 4)
    quat_b = torch.tensor([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]).expand(3, 4)  # 90 deg, z
    for m, should_change in ((model, True), (legacy, False)):
        out = m(batch)
        losses = []
        for quat in (quat_a, quat_b):
            batch[TARGET_POSE] = torch.cat([batch["target_xyz"], quat], -1)
            losses.append(m.loss(batch, out)[1]["posa"])
        assert (abs(losses[0] - losses[1]) > 1e-4) == should_change, (m.cfg.posa_anchor, losses)
        # the cross-attention itself: same queries, the candidates' rotations differ only
        q = torch.randn(3, 12, SMALL["d_model"])
        kv = torch.randn(3, 32, SMALL["d_model"])
        kxyz = batch["xyz"][:, :32]
        cxyz = batch["candidates"][..., :3]
        _, w_a = m.cross(q, kv, None, cxyz, kxyz, quat_to_matrix(quat_a[:, None].expand(3, 12, 4)))
        _, w_b = m.cross(q, kv, None, cxyz, kxyz, quat_to_matrix(quat_b[:, None].expand(3, 12, 4)))
        assert (not torch.allclose(w_a, w_b, atol=1e-5)) == should_change


def test_old_checkpoint_configs_load_with_the_old_dssa_and_posa():
    """Configs saved before ``dssa_neighbourhood`` / ``posa_anchor`` existed keep the old behaviour."""
    import json

    from safetensors.torch import load_file

    from vla_policy.policy import CHECKPOINT_DIR

    new = PolicyConfig.from_variant("SR+PosA", **SMALL)
    assert new.dssa_neighbourhood == "serial" and new.posa_anchor == "pose"  # new models: new behaviour
    old = new.to_dict()
    for name in ("dssa_neighbourhood", "dssa_window", "posa_anchor", "posa_sigma_tcp_m"):
        old.pop(name)
    cfg = PolicyConfig.from_dict(old)
    assert cfg.dssa_neighbourhood == "rank" and cfg.posa_anchor == "position"
    model = PolicyModel(cfg)
    assert model.layers[0].attn.neighbourhood == "rank" and not hasattr(model.cross, "anchor_log_sigma")
    # the DSSA parameters are the same in both forms: new weights (less the PosA widths) load strictly
    state = {k: v for k, v in PolicyModel(new).state_dict().items() if "anchor_log_sigma" not in k}
    model.load_state_dict(state)
    shipped = [d for d in sorted(CHECKPOINT_DIR.glob("SR*")) if (d / "config.json").is_file()]
    for d in shipped:  # shipped checkpoints saved before the fields: old behaviour, strict load
        saved = json.loads((d / "config.json").read_text())["policy"]
        if "dssa_neighbourhood" in saved:
            continue
        m = PolicyModel(PolicyConfig.from_dict(saved))
        assert m.cfg.dssa_neighbourhood == "rank" and m.cfg.posa_anchor == "position", d.name
        m.load_state_dict({k: v.float() for k, v in load_file(str(d / "model.safetensors")).items()})
