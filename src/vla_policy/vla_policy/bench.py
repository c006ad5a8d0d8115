# SPDX-License-Identifier: Apache-2.0
"""Policy benchmarks: attention variants side by side, and policy inference latency per decision.

``run(out_dir)`` writes ``<out_dir>/bench_policy.json`` and ``bench_policy.png``.

Attention: one training step (forward + backward + Adam) of one pre-LN attention layer, batch 8,
width 256, 8 heads, at 1k, 2k and 4k tokens, on CPU with 1 thread. Every (attention, N) runs in its
own subprocess; peak memory is the peak RSS (``ru_maxrss``) minus the RSS before the first step.
Results are also given as ratios to softmax MHSA (``F.scaled_dot_product_attention``). The goal for
MGFA (000's headline: -72 % memory, 10x faster) is <= 0.25x memory and >= 10x throughput at 4k.
Configurations whose (B, H, N, N) score maps would exceed ``MEM_BUDGET_GB`` (the materialising
``relu`` and ``dssa`` variants at large N) are not run; the JSON records the estimate instead.

Policy: ``Policy.decide`` on a synthetic 30k-point scene (table + 6 boxes, random unit features)
with the default SR configuration (the shipped SR checkpoint when present), split into priors,
model and total time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH, WIDTH, HEADS = 8, 256, 8
TOKENS = (1024, 2048, 4096)
ATTNS = ("softmax", "relu", "dssa", "mgfa")
MEM_BUDGET_GB = 5.0
MGFA_KW = {"k_keep": 128, "num_memory": 8}
# fp32 (B, H, N, N) tensors alive at the peak of a step (forward kept for backward + gradients)
_QUADRATIC_TENSORS = {"relu": 4, "dssa": 10}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _one(attn: str, n: int, repeats: int) -> dict[str, Any]:
    """Run in a subprocess: time and peak memory of one attention type at n tokens.

    What is measured (identical for every type): one self-attention call
    ``out, _ = attn(x, x, x, q_pos=pos, k_pos=pos)`` of the full attention block (its Q/K/V/output
    projections included) on ``x`` (B, N, D) that requires grad, then ``out.backward(grad_out)``
    (gradients for ``x`` and every parameter). No LayerNorm, loss or optimizer around it. ``x``,
    ``pos``, ``grad_out`` and the module exist before the baseline RSS is read, so the delta is
    what the forward + backward itself allocates (activations, saved tensors, gradients).
    """
    import torch

    from vla_policy.attention import make_attention

    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = make_attention(attn, WIDTH, HEADS, **MGFA_KW)
    x = torch.randn(BATCH, n, WIDTH, requires_grad=True)
    pos = torch.rand(BATCH, n, 3) * 0.5
    grad_out = torch.randn(BATCH, n, WIDTH) / n
    base = _rss_mb()

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = module(x, x, x, q_pos=pos, k_pos=pos)
        out.backward(grad_out)

    step()  # warm-up (its peak counts too: same computation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"attention": attn, "tokens": n, "step_s": float(np.median(times)), "step_s_all": times,
            "peak_rss_delta_mb": peak - base, "activation_mb_per_bnd": peak_units(peak - base, n)}


def peak_units(mb: float, n: int) -> float:
    """Peak memory in units of one fp32 (B, N, D) tensor (how many token-sized tensors are alive)."""
    return mb * 2**20 / (BATCH * n * WIDTH * 4)


def _estimate_gb(attn: str, n: int) -> float:
    return _QUADRATIC_TENSORS.get(attn, 0) * BATCH * HEADS * n * n * 4 / 2**30


def bench_attention(repeats: dict[int, int] | None = None, tokens: tuple[int, ...] = TOKENS,
                    attns: tuple[str, ...] = ATTNS) -> list[dict[str, Any]]:
    """All (attention, N) configurations, each in its own subprocess."""
    repeats = repeats or {1024: 3, 2048: 2, 4096: 1}
    rows = []
    for n in tokens:
        for attn in attns:
            est = _estimate_gb(attn, n)
            if est > MEM_BUDGET_GB:
                why = f"estimated {est:.1f} GB of score maps > budget {MEM_BUDGET_GB} GB"
                rows.append({"attention": attn, "tokens": n, "skipped": why})
                continue
            code = (f"import json; from vla_policy.bench import _one; "
                    f"print(json.dumps(_one({attn!r}, {n}, {repeats.get(n, 1)})))")
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                                 env={"OMP_NUM_THREADS": "1", **_env()})
            if res.returncode != 0:
                rows.append({"attention": attn, "tokens": n, "skipped": f"failed: {res.stderr[-300:]}"})
                continue
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    for n in tokens:
        refs = [r for r in rows if r["attention"] == "softmax" and r["tokens"] == n and "step_s" in r]
        ref = refs[0] if refs else None
        for r in rows:
            if r["tokens"] == n and "step_s" in r and ref is not None:
                r["time_ratio_vs_softmax"] = r["step_s"] / ref["step_s"]
                r["speedup_vs_softmax"] = ref["step_s"] / r["step_s"]
                r["memory_ratio_vs_softmax"] = r["peak_rss_delta_mb"] / max(ref["peak_rss_delta_mb"], 1e-6)
    return rows


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def synthetic_scene(n_objects: int = 6, feature_dim: int = 256, seed: int = 0):
    """A table with boxes as a ``FeatureCloud``-like object (xyz, features) of ~30k points."""
    rng = np.random.default_rng(seed)
    g = np.arange(0.2, 0.8, 0.004)
    xx, yy = np.meshgrid(g, g - 0.5)
    pts = [np.c_[xx.ravel(), yy.ravel(), np.zeros(xx.size)]]
    for _ in range(n_objects):
        sx, sy, sz = rng.uniform(0.03, 0.07, 3)
        cx, cy = rng.uniform(0.3, 0.7), rng.uniform(-0.2, 0.2)
        u, v = np.meshgrid(np.arange(-sx / 2, sx / 2, 0.003), np.arange(-sy / 2, sy / 2, 0.003))
        pts.append(np.c_[u.ravel() + cx, v.ravel() + cy, np.full(u.size, sz)])
        for sgn in (-1, 1):
            a, b = np.meshgrid(np.arange(-sy / 2, sy / 2, 0.003), np.arange(0, sz, 0.003))
            pts.append(np.c_[np.full(a.size, cx + sgn * sx / 2), a.ravel() + cy, b.ravel()])
            a, b = np.meshgrid(np.arange(-sx / 2, sx / 2, 0.003), np.arange(0, sz, 0.003))
            pts.append(np.c_[a.ravel() + cx, np.full(a.size, cy + sgn * sy / 2), b.ravel()])
    xyz = np.concatenate(pts).astype(np.float32)
    f = rng.standard_normal((len(xyz), feature_dim)).astype(np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)

    class _C:
        pass

    c = _C()
    c.xyz, c.features = xyz, f
    return c


def bench_policy(repeats: int = 5) -> dict[str, Any]:
    """Latency of ``Policy.decide`` per decision on the synthetic scene."""
    import torch

    from vla_policy.configuration import PolicyConfig
    from vla_policy.model import PolicyModel
    from vla_policy.policy import CHECKPOINT_DIR, Policy

    torch.set_num_threads(1)
    source = "random-init SR (no shipped checkpoint)"
    if (CHECKPOINT_DIR / "SR" / "config.json").exists():
        policy = Policy.load("SR")
        source = "shipped SR checkpoint"
    else:
        policy = Policy(PolicyModel(PolicyConfig.from_variant("SR")))
    d = policy.cfg.feature_dim
    cloud = synthetic_scene(feature_dim=d)
    text = np.random.default_rng(1).standard_normal((6, d)).astype(np.float32)
    runs = []
    for _ in range(repeats + 1):
        dec = policy.decide(cloud, "grasp the red box", text_features=text)
        runs.append(dec.timings_ms)
    runs = runs[1:]
    med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    return {"source": source, "points": int(len(cloud.xyz)), "candidates": int(len(dec.candidates)),
            "timings_ms_median": med, "threads": 1}


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in ((axes[0], "step_s", "train step time (s), B=8, D=256, H=8"),
                           (axes[1], "peak_rss_delta_mb", "peak RSS delta (MB)")):
        for attn in ATTNS:
            pts = [(r["tokens"], r[key]) for r in rows if r["attention"] == attn and key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=attn)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("tokens")
        ax.set_title(title, fontsize=9)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(out_dir: Path) -> dict[str, Any]:
    """Run all policy benchmarks; write ``bench_policy.json`` and ``bench_policy.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = bench_attention()
    policy = bench_policy()
    at4k = {r["attention"]: r for r in rows if r["tokens"] == 4096}
    mg = at4k.get("mgfa", {})
    mem, speed = mg.get("memory_ratio_vs_softmax"), mg.get("speedup_vs_softmax")
    goal = {
        "mgfa_memory_ratio_4k": mem,
        "mgfa_speedup_4k": speed,
        "memory_goal_met": mem is not None and mem <= 0.25,
        "speed_goal_met": speed is not None and speed >= 10.0,
    }
    result = {"name": "policy", "setup": {"batch": BATCH, "width": WIDTH, "heads": HEADS, "threads": 1,
                                          "mgfa": {"k_keep": 64, "num_memory": 8}},
              "attention": rows, "goal": goal, "policy_latency": policy,
              "wall_s": time.perf_counter() - t0}
    (out_dir / "bench_policy.json").write_text(json.dumps(result, indent=2))
    _plot(rows, out_dir / "bench_policy.png")
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1] if len(sys.argv) > 1 else "results")), indent=2))
