# SPDX-License-Identifier: Apache-2.0
"""Attention variants: shapes, key-padding masks, gradient flow, DSSA sparsity and fusion weights, MGFA."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from vla_policy.attention import (
    ATTENTION_TYPES,
    DSSAttention,
    _read_weights,
    _SerialWindowDSSA,
    make_attention,
    zorder_codes,
)

torch.set_num_threads(1)
B, NQ, NK, D, H = 2, 5, 40, 32, 4


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, NQ, D, generator=g)
    k = torch.randn(B, NK, D, generator=g)
    v = torch.randn(B, NK, D, generator=g)
    qp = torch.rand(B, NQ, 3, generator=g) * 0.3
    kp = torch.rand(B, NK, 3, generator=g) * 0.3
    kpm = torch.zeros(B, NK, dtype=torch.bool)
    kpm[0, 30:] = True
    kpm[1, ::3] = True
    return q, k, v, qp, kp, kpm


def _make(name):
    torch.manual_seed(0)
    return make_attention(name, D, H, k_keep=8, num_memory=4).eval()


@pytest.mark.parametrize("name", ATTENTION_TYPES)
@pytest.mark.parametrize("need_weights", [False, True])
def test_shapes(name, need_weights):
    q, k, v, qp, kp, kpm = _inputs()
    out, w = _make(name)(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp, need_weights=need_weights)
    assert out.shape == (B, NQ, D)
    assert torch.isfinite(out).all()
    if need_weights:
        assert w.shape == (B, NQ, NK)
    else:
        assert w is None


@pytest.mark.parametrize("name", ATTENTION_TYPES)
def test_masked_keys_get_zero_weight_and_do_not_change_output(name):
    q, k, v, qp, kp, kpm = _inputs()
    attn = _make(name)
    out, w = attn(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp, need_weights=True)
    assert torch.all(w.masked_select(kpm[:, None, :].expand_as(w)) == 0)
    # scramble the content and positions of the masked keys: the output must not move
    k2, v2, kp2 = k.clone(), v.clone(), kp.clone()
    k2[kpm] = torch.randn(int(kpm.sum()), D) * 10
    v2[kpm] = torch.randn(int(kpm.sum()), D) * 10
    kp2[kpm] = torch.rand(int(kpm.sum()), 3)
    for nw in (False, True):
        out_a, _ = attn(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp, need_weights=nw)
        out_b, _ = attn(q, k2, v2, key_padding_mask=kpm, q_pos=qp, k_pos=kp2, need_weights=nw)
        torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    # without the mask the scrambled keys do change the output (the test can fail)
    out_c, _ = attn(q, k2, v2, q_pos=qp, k_pos=kp2)
    assert not torch.allclose(out, out_c, atol=1e-3)


@pytest.mark.parametrize("name", ATTENTION_TYPES)
def test_fully_masked_row_gives_zeros(name):
    q, k, v, qp, kp, kpm = _inputs()
    kpm[1] = True
    out, _ = _make(name)(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp)
    assert torch.isfinite(out).all()
    assert torch.all(out[1] == 0)


@pytest.mark.parametrize("name", ATTENTION_TYPES)
def test_weights_match_fast_path(name):
    q, k, v, qp, kp, kpm = _inputs()
    attn = _make(name)
    a, _ = attn(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp, need_weights=False)
    b, _ = attn(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp, need_weights=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ATTENTION_TYPES)
def test_gradients_reach_every_parameter_and_input(name):
    q, k, v, qp, kp, kpm = _inputs()
    q.requires_grad_(True)
    v.requires_grad_(True)
    attn = make_attention(name, D, H, k_keep=8, num_memory=4)
    if name == "dssa":  # make the score conv non-identity so its off-centre taps get gradient paths
        with torch.no_grad():
            attn.conv_weight.add_(0.01 * torch.randn_like(attn.conv_weight))
    out, _ = attn(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp)
    out.square().mean().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert v.grad is not None and v.grad.abs().sum() > 0
    for pname, p in attn.named_parameters():
        assert p.grad is not None, f"{name}: no grad for {pname}"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: zero grad for {pname}"


@pytest.mark.parametrize("neighbourhood", ["rank", "serial"])
def test_dssa_sparse_branch_exactly_zero_where_scores_negative(neighbourhood):
    q, k, v, qp, kp, _ = _inputs()
    torch.manual_seed(0)
    attn = DSSAttention(D, H, neighbourhood=neighbourhood, window=64)  # serial: one window holds all keys
    attn(q, k, v, q_pos=qp, k_pos=kp)
    qh, kh, _ = attn._project(q, k, v)
    s = attn.scores(qh, kh, qp, kp)
    a_s = attn._last_sparse
    assert (s <= 0).any() and (s > 0).any()
    assert torch.all(a_s[s <= 0] == 0)
    torch.testing.assert_close(a_s[s > 0], s[s > 0].square())


def test_dssa_fusion_weights_stay_normalised_during_training():
    q, k, v, qp, kp, kpm = _inputs()
    attn = DSSAttention(D, H)
    opt = torch.optim.Adam(attn.parameters(), lr=0.5)
    seen = []
    for _ in range(5):
        opt.zero_grad()
        out, _ = attn(q, k, v, key_padding_mask=kpm, q_pos=qp, k_pos=kp)
        (out[..., 0].mean() - 3.0).square().backward()
        opt.step()
        w = attn.fusion_weights
        assert torch.all(w > 0)
        torch.testing.assert_close(w.sum(), torch.tensor(1.0))
        seen.append(w.detach().clone())
    assert not torch.allclose(seen[0], seen[-1]), "fusion weights never moved: they are not learned"


def test_dssa_factorised_conv_equals_conv_over_score_map():
    attn = _make("dssa")
    with torch.no_grad():
        attn.conv_weight.copy_(torch.randn_like(attn.conv_weight))
        attn.conv_bias.copy_(torch.randn_like(attn.conv_bias))
    qh, kh = torch.randn(2, H, 7, 8), torch.randn(2, H, 9, 8)
    s = qh @ kh.transpose(-2, -1) / 8**0.5
    torch.testing.assert_close(attn.dense_scores(qh, kh), attn.score_conv(s), atol=1e-4, rtol=1e-4)


def test_dssa_self_attention_padding_does_not_leak():
    attn = _make("dssa")
    with torch.no_grad():
        attn.conv_weight.copy_(torch.randn_like(attn.conv_weight))
    x = torch.randn(B, NK, D)
    p = torch.rand(B, NK, 3)
    kpm = torch.zeros(B, NK, dtype=torch.bool)
    kpm[:, 10:14] = True
    a, _ = attn(x, x, x, key_padding_mask=kpm, q_pos=p, k_pos=p)
    y = x.clone()
    y[kpm] = torch.randn(int(kpm.sum()), D) * 5
    b, _ = attn(y, y, y, key_padding_mask=kpm, q_pos=p, k_pos=p)
    torch.testing.assert_close(a[~kpm], b[~kpm], atol=1e-5, rtol=1e-5)


def test_dssa_relative_bias_uses_positions():
    q, k, v, qp, kp, _ = _inputs()
    attn = _make("dssa")
    with torch.no_grad():
        attn.rel_bias.table.copy_(torch.randn_like(attn.rel_bias.table))
    a, _ = attn(q, k, v, q_pos=qp, k_pos=kp)
    b, _ = attn(q, k, v, q_pos=qp, k_pos=kp * 2.0)
    assert not torch.allclose(a, b)


def test_mgfa_has_no_quadratic_tensor():
    # with k_keep + M << N the attention map per query has k + M columns, never N
    attn = make_attention("mgfa", D, H, k_keep=8, num_memory=4)
    q = torch.randn(1, 512, D)
    seen_shapes = []

    def hook(_mod, _inp, out):
        seen_shapes.append(out[0].shape)

    attn.register_forward_hook(hook)
    captured = []
    orig = torch.nn.functional.scaled_dot_product_attention

    def spy(qh, kh, vh, attn_mask=None):
        captured.append(kh.shape)
        return orig(qh, kh, vh, attn_mask=attn_mask)

    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        attn(q, q, q)
    finally:
        torch.nn.functional.scaled_dot_product_attention = orig
    assert captured and captured[0][2] == 8 + 4


def test_unknown_attention_name_lists_choices():
    with pytest.raises(ValueError, match="softmax"):
        make_attention("flash", D, H)


# ---- MGFA in self-attention with N >> k_keep (the encoder's use): the fused low-memory path ----
NS, KEEP, MEM = 64, 8, 4


def _self_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, NS, D, generator=g)
    kpm = torch.zeros(B, NS, dtype=torch.bool)
    kpm[0, 50:] = True
    kpm[1, ::5] = True
    return x, kpm


def _mgfa(fused=True):
    torch.manual_seed(0)
    attn = make_attention("mgfa", D, H, k_keep=KEEP, num_memory=MEM)
    attn.fused = fused
    attn.chunk = 24  # several blocks per batch item, one of them partial
    return attn


def _fwd_bwd(attn, x, kpm):
    x = x.clone().requires_grad_(True)
    out, _ = attn(x, x, x, key_padding_mask=kpm)
    g = torch.Generator().manual_seed(1)
    out.backward(torch.randn(out.shape, generator=g))
    return out.detach(), x.grad, {n: p.grad for n, p in attn.named_parameters()}


def test_mgfa_fused_path_equals_plain_autograd_and_reaches_gate_and_memory():
    x, kpm = _self_inputs()
    out_f, gx_f, gp_f = _fwd_bwd(_mgfa(True), x, kpm)
    out_p, gx_p, gp_p = _fwd_bwd(_mgfa(False), x, kpm)
    torch.testing.assert_close(out_f, out_p, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gx_f, gx_p, atol=1e-5, rtol=1e-4)
    for name, g in gp_p.items():
        assert gp_f[name] is not None, name
        torch.testing.assert_close(gp_f[name], g, atol=1e-5, rtol=1e-4, msg=name)
    # the gate (top-k + pooling bias + value scaling) and the memory tokens learn
    for name in ("gate.weight", "gate.bias", "memory"):
        assert gp_f[name].abs().sum() > 0, name
    assert gx_f.abs().sum() > 0


def test_mgfa_keeps_top_k_valid_keys_by_gate():
    x, kpm = _self_inputs()
    attn = _mgfa()
    attn(x, x, x, key_padding_mask=kpm)
    kept = attn.last_kept
    assert kept.shape == (B, KEEP)
    gate = attn.last_gate.masked_fill(kpm, -1.0)
    for b in range(B):
        assert not kpm[b, kept[b]].any(), "a padded key was kept"
        assert set(kept[b].tolist()) == set(gate[b].topk(KEEP).indices.tolist())


def test_mgfa_self_attention_padding_and_weights():
    x, kpm = _self_inputs()
    attn = _mgfa().eval()
    a, w = attn(x, x, x, key_padding_mask=kpm, need_weights=True)
    b, _ = attn(x, x, x, key_padding_mask=kpm)  # fused path
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert torch.all(w.masked_select(kpm[:, None, :].expand_as(w)) == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, NS))  # every query's weights are a distribution
    y = x.clone()
    y[kpm] = torch.randn(int(kpm.sum()), D) * 10
    c, _ = attn(y, y, y, key_padding_mask=kpm)
    torch.testing.assert_close(b[~kpm], c[~kpm], atol=1e-5, rtol=1e-5)  # valid rows ignore padding
    d, _ = attn(y, y, y)
    assert not torch.allclose(b[~kpm], d[~kpm], atol=1e-3)


def test_mgfa_folded_memory_read_equals_multihead_attention_over_memory_tokens():
    attn = _mgfa()
    g = torch.Generator().manual_seed(2)
    x, mem_k, mem_v = torch.randn(B, NS, D, generator=g), torch.randn(B, MEM, D, generator=g), \
        torch.randn(B, MEM, D, generator=g)
    qh, kh, vh = attn._split(attn.q_proj(x)), attn._split(mem_k), attn._split(mem_v)
    ref = attn.out_proj(attn._merge((qh @ kh.transpose(-2, -1) / math.sqrt(D // H)).softmax(-1) @ vh))
    a_mat, c, y_mem = attn._memory_operands(mem_k, mem_v)
    r = _read_weights(x, a_mat, c, torch.zeros(B, NS, dtype=torch.bool), H)  # (B, N, H M)
    torch.testing.assert_close(r @ y_mem + attn.out_proj.bias, ref, atol=1e-5, rtol=1e-5)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(o, torch.Tensor):
                self.largest = max(self.largest, o.numel())
        return out


@pytest.mark.parametrize("name", ["mgfa", "relu"])
def test_mgfa_never_builds_a_token_by_token_tensor(name):
    # N = 256 tokens, width 32: (B, H, N, N) = 524k elements vs (B, N, D) = 16k. relu is the control
    # that shows the check detects a quadratic map.
    n = 256
    attn = make_attention(name, D, H, k_keep=KEEP, num_memory=MEM)
    x = torch.randn(B, n, D, requires_grad=True)
    with _LargestTensor() as spy:
        out, _ = attn(x, x, x)
        out.square().mean().backward()
    if name == "relu":
        assert spy.largest >= B * H * n * n
    else:
        assert spy.largest <= B * n * D  # nothing bigger than the input itself
        assert attn.last_kept.shape == (B, KEEP)


def test_mgfa_fused_path_without_input_grad():
    x, kpm = _self_inputs()
    attn = _mgfa()
    out, _ = attn(x, x, x, key_padding_mask=kpm)  # x does not require grad
    out.square().mean().backward()
    assert attn.gate.weight.grad.abs().sum() > 0 and attn.memory.grad.abs().sum() > 0


def test_mgfa_old_checkpoint_format_gives_clear_error():
    attn = _mgfa()
    old = {k: v for k, v in attn.state_dict().items()}
    old["gate_norm.weight"] = torch.ones(D)
    with pytest.raises(ValueError, match="retrain"):
        attn.load_state_dict(old)
    attn.load_state_dict(_mgfa().state_dict())  # the current format loads


def _perturbed_dssa(window=16, n=70, seed=0):
    """A serial DSSA with every parameter moved off its initial value, and a padded self-attention input."""
    torch.manual_seed(seed)
    attn = DSSAttention(D, H, window=window)
    with torch.no_grad():
        attn.conv_weight.add_(0.3 * torch.randn_like(attn.conv_weight))
        attn.conv_bias.add_(0.1 * torch.randn(H))
        attn.rel_bias.table.copy_(torch.randn_like(attn.rel_bias.table))
        attn.fusion_logits.copy_(torch.randn(2))
        attn.sparse_norm.weight.add_(0.1 * torch.randn(D // H))
    x = torch.randn(B, n, D)
    pos = torch.rand(B, n, 3) * 0.3
    kpm = torch.zeros(B, n, dtype=torch.bool)
    kpm[0, 50:] = True
    kpm[1, ::7] = True
    return attn, x, pos, kpm


@pytest.mark.parametrize("chunk", [None, 2 * 16 * 16 * 2])  # default: one chunk; small: 2 windows a chunk
def test_dssa_serial_fused_kernel_equals_plain_autograd_in_outputs_and_gradients(chunk, monkeypatch):
    """The hand-written backward of the fused window kernel against autograd on the same formulas."""
    if chunk is not None:
        monkeypatch.setattr(_SerialWindowDSSA, "CHUNK_ELEMENTS", chunk)
    attn, x0, pos, kpm = _perturbed_dssa()
    g = torch.randn(B, x0.shape[1], D)
    res = []
    for fused in (True, False):
        attn.fused = fused
        attn.zero_grad()
        x = x0.clone().requires_grad_(True)
        out, _ = attn(x, x, x, key_padding_mask=kpm, q_pos=pos, k_pos=pos)
        out.backward(g)
        res.append((out.detach(), x.grad, {n: p.grad.clone() for n, p in attn.named_parameters()}))
    (o1, gx1, gp1), (o2, gx2, gp2) = res
    torch.testing.assert_close(o1, o2, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gx1, gx2, atol=1e-5, rtol=1e-4)
    for name in gp1:
        torch.testing.assert_close(gp1[name], gp2[name], atol=1e-4, rtol=1e-4, msg=name)
    assert gp1["conv_weight"].abs().sum() > 0 and gp1["rel_bias.table"].abs().sum() > 0


def test_dssa_serial_windows_restrict_attention_to_z_order_windows():
    attn, x, pos, _ = _perturbed_dssa(window=16, n=64)
    attn(x, x, x, q_pos=pos, k_pos=pos, need_weights=True)
    a_s = attn._last_sparse  # (B, H, N, N) in the given token order
    order = zorder_codes(pos, None).sort(dim=1, stable=True).indices
    rank = order.argsort(1)  # (B, N) Z-order position of each token
    for h, off in ((0, 0), (H - 1, 8)):  # first head: windows at 0; last head: shifted by w / 2
        win = (rank + off) // 16
        outside = win[:, :, None] != win[:, None, :]  # (B, N, N)
        assert torch.all(a_s[:, h][outside] == 0)
        assert (a_s[:, h][~outside] > 0).any()


def test_dssa_dense_branch_mixes_spatial_neighbours_not_rank_neighbours():
    """Tokens alternate between two clusters 1 m apart, as relevance rank can interleave far objects.

    Token i's output must follow its spatial (Z-order) neighbour j and ignore token i + 1, its
    neighbour in the given (rank) order but 1 m away. Dense branch alone (fusion weight ~1).
    """
    n = 128
    g = torch.Generator().manual_seed(3)
    pos = torch.rand(1, n, 3, generator=g) * 0.05
    pos[0, 1::2, 0] += 1.0  # odd tokens: the far cluster
    x = torch.randn(1, n, D, generator=g)
    torch.manual_seed(0)
    attn = DSSAttention(D, H, window=16)
    with torch.no_grad():
        attn.conv_weight.add_(0.3 * torch.randn_like(attn.conv_weight))
        attn.fusion_logits.copy_(torch.tensor([30.0, -30.0]))  # dense branch only
    order = zorder_codes(pos, None).sort(dim=1, stable=True).indices[0]
    i = int(order[32])  # middle of the near cluster's 64 Z-ordered tokens: its windows stay inside it
    j = int(order[33])  # next along the Z-order curve
    assert i % 2 == 0 and float((pos[0, i] - pos[0, j]).norm()) < 0.05
    assert float((pos[0, i] - pos[0, i + 1]).norm()) > 0.9
    base, _ = attn(x, x, x, q_pos=pos, k_pos=pos)
    for other, should_change in ((i + 1, False), (j, True)):
        y = x.clone()
        y[0, other] = torch.randn(D, generator=g) * 3
        out, _ = attn(y, y, y, q_pos=pos, k_pos=pos)
        moved = float((out[0, i] - base[0, i]).detach().abs().max())
        assert (moved > 1e-3) == should_change, (other, moved)
    # the legacy order-based DSSA mixes the rank neighbour into token i's output
    legacy = DSSAttention(D, H, neighbourhood="rank")
    legacy.load_state_dict(attn.state_dict())
    y = x.clone()
    y[0, i + 1] = torch.randn(D, generator=g) * 3
    assert not torch.allclose(legacy(x, x, x, q_pos=pos, k_pos=pos)[0][0, i],
                              legacy(y, y, y, q_pos=pos, k_pos=pos)[0][0, i], atol=1e-3)


def test_dssa_serial_needs_positions_and_checks_its_arguments():
    x = torch.randn(B, NK, D)
    with pytest.raises(ValueError, match="positions"):
        DSSAttention(D, H)(x, x, x)
    with pytest.raises(ValueError, match="neighbourhood"):
        DSSAttention(D, H, neighbourhood="voxel")
    with pytest.raises(ValueError, match="window"):
        DSSAttention(D, H, window=1)


def test_dssa_serial_has_no_quadratic_tensor():
    """The fused self-attention path builds nothing of size N x N (only window maps, N x w)."""
    n, w = 256, 16
    attn = DSSAttention(D, H, window=w)
    x = torch.randn(1, n, D, requires_grad=True)
    pos = torch.rand(1, n, 3)

    class Watch(TorchDispatchMode):
        biggest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    Watch.biggest = max(Watch.biggest, t.numel())
            return out

    with Watch():
        out, _ = attn(x, x, x, q_pos=pos, k_pos=pos)
        out.sum().backward()
    assert Watch.biggest < n * n, Watch.biggest  # an (N, N) map of one head would be n * n


def test_dssa_serial_self_attention_with_a_fully_padded_sample_gives_zeros():
    attn, x0, pos, kpm = _perturbed_dssa()
    kpm[1] = True
    x = x0.clone().requires_grad_(True)
    out, _ = attn(x, x, x, key_padding_mask=kpm, q_pos=pos, k_pos=pos)
    assert torch.isfinite(out).all() and torch.all(out[1] == 0)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[1] == 0)
