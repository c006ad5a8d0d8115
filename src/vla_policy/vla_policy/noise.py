# SPDX-License-Identifier: Apache-2.0
"""Noise table: grounding of policy variants on held-out decisions under point-cloud noise.

The SR paper (seeds/001, Sec. 4.4, Table 4) adds Gaussian noise of three strengths (sigma 0.1 /
0.2 / 0.3, "Light / Medium / High", units not stated) to the point cloud and compares the
sparsification function inside the encoder: ReLU^2 (DSSA's sparse branch), ReLU and softmax. Our
table does the same with the shipped checkpoints of one data set:

* variants: ``SR-A`` (softmax), ``SR-ReLU`` (plain ReLU), ``SR`` (DSSA: softmax + ReLU^2),
  ``SR+MGFA`` (memory-gated filtering), each a checkpoint under ``vla_policy/checkpoints``;
* noise, two kinds (``--kind``), at light / medium / high:

  - ``xyz``: i.i.d. Gaussian offsets on every cloud point's position, sigma 0.01 / 0.02 / 0.03 m
    (the paper's 1 : 2 : 3, read as decimetres);
  - ``features``: i.i.d. Gaussian noise on every point's fused CLIP feature with expected norm
    sigma = 0.1 / 0.2 / 0.3 of the unit feature (per dimension sigma / sqrt(D)), renormalised: the
    "semantic noise" DSSA is meant to suppress.

  Everything else (colours, text, the candidate grasps the priors computed from the clean cloud)
  stays as recorded, so the table isolates the policy's robustness from the priors';
* decisions: held-out expert-labelled shards (``vla collect``, seeds never trained on);
* metrics (``train.evaluate``): ``on_target`` (the chosen grasp lies on the instructed object) and
  ``hit`` (the expert's candidate, or one within 2 cm and 15 deg of the expert's pose), mean and
  standard deviation over ``repeats`` noise draws.

Run: ``python -m vla_policy.noise --data data/heldout_grasp_v2 data/heldout_grasp_v3 --out results``
writes ``noise_table.json``, ``noise_table.md`` and ``noise_table.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_VARIANTS = ("SR-A", "SR-ReLU", "SR", "SR+MGFA")
KINDS = {"xyz": (0.0, 0.01, 0.02, 0.03), "features": (0.0, 0.1, 0.2, 0.3)}
LEVEL_NAMES = ("none", "light", "medium", "high")


def add_point_noise(samples: list[dict[str, Any]], sigma: float, seed: int,
                    kind: str = "xyz") -> list[dict[str, Any]]:
    """Copies of ``samples`` with Gaussian noise on the points (the inputs are not modified).

    Args:
        samples: decisions as loaded by ``data.load_samples`` (``xyz`` (P, 3) float32 metres,
            ``features`` (P, D) unit vectors).
        sigma: ``xyz``: standard deviation per axis in metres; ``features``: expected noise norm
            relative to the unit feature (per dimension sigma / sqrt(D)), renormalised after.
        seed: seed of the noise draw (one generator for the whole list).
        kind: ``xyz`` or ``features``.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    if kind not in KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {list(KINDS)}")
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        a = np.asarray(s[kind], dtype=np.float32)
        if sigma > 0:
            scale = sigma if kind == "xyz" else sigma / np.sqrt(a.shape[1])
            a = a + rng.normal(0.0, scale, a.shape).astype(np.float32)
            if kind == "features":
                a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        else:
            a = a.copy()
        out.append({**s, kind: a})
    return out


def level(kind: str, sigma: float) -> str:
    """``light`` etc. for the default levels of ``kind``, else the number."""
    levels = KINDS[kind]
    return LEVEL_NAMES[levels.index(sigma)] if sigma in levels else f"{sigma:g}"


def noise_table(models: dict[str, Any], samples: list[dict[str, Any]], kind: str = "xyz",
                sigmas: tuple[float, ...] | None = None, repeats: int = 3,
                progress: bool = True) -> list[dict[str, Any]]:
    """One row per (variant, sigma): mean and std of the held-out metrics over ``repeats`` draws.

    Args:
        models: variant name -> ``PolicyModel`` (e.g. ``Policy.load(name).model``).
        samples: held-out decisions (grasp decisions with ``object_aabbs`` give ``on_target``).
        kind: ``xyz`` or ``features`` (``add_point_noise``).
        sigmas: noise levels (default: none, light, medium, high of ``kind``).
        repeats: noise draws per level (sigma 0 is drawn once).
        progress: show a progress bar.
    """
    from tqdm import tqdm

    from vla_policy.train import evaluate

    sigmas = KINDS[kind] if sigmas is None else sigmas
    jobs = [(name, s) for name in models for s in sigmas]
    rows = []
    for name, sigma in tqdm(jobs, desc=f"noise table ({kind})", disable=not progress):
        draws = []
        for r in range(1 if sigma == 0 else repeats):
            draws.append(evaluate(models[name], add_point_noise(samples, sigma, 1000 + r, kind)))
        on = [d["val_on_target"] for d in draws]
        hit = [d["val_hit"] for d in draws]
        rows.append({"variant": name, "attention": models[name].cfg.attention, "kind": kind,
                     "sigma": sigma, "level": level(kind, sigma), "draws": len(draws),
                     "on_target": float(np.mean(on)), "on_target_std": float(np.std(on)),
                     "hit": float(np.mean(hit)), "hit_std": float(np.std(hit)),
                     "n": int(draws[0]["val_n"]), "n_target": int(draws[0]["val_n_target"])})
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown: one row per variant, one column per noise level (on target / hit)."""
    sigmas = sorted({r["sigma"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    kind = rows[0]["kind"] if rows else "xyz"
    unit = (lambda s: f"{s * 100:g} cm") if kind == "xyz" else (lambda s: f"{s:g}")
    head = f"| variant (attention), {kind} noise | " + " | ".join(
        f"sigma {unit(s)} ({level(kind, s)})" for s in sigmas) + " |"
    lines = [head, "|" + "---|" * (len(sigmas) + 1)]
    for v in variants:
        cells = []
        for s in sigmas:
            r = next(x for x in rows if x["variant"] == v and x["sigma"] == s)
            cells.append(f"{r['on_target']:.2f} +- {r['on_target_std']:.2f} / {r['hit']:.2f}")
        att = next(x["attention"] for x in rows if x["variant"] == v)
        lines.append(f"| {v} ({att}) | " + " | ".join(cells) + " |")
    n = rows[0]["n_target"] if rows else 0
    lines.append("")
    lines.append(f"Cells: on target (mean +- std over noise draws) / expert candidate or within 2 cm & "
                 f"15 deg; {n} held-out grasp decisions.")
    return "\n".join(lines) + "\n"


def plot(tables: dict[str, list[dict[str, Any]]], out_png: Path) -> None:
    """On-target rate against sigma, one panel per noise kind, one line per variant (std bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5.0 * len(tables), 3.8), squeeze=False)
    for ax, (kind, rows) in zip(axes[0], tables.items()):
        for v in dict.fromkeys(r["variant"] for r in rows):
            rr = sorted((r for r in rows if r["variant"] == v), key=lambda r: r["sigma"])
            scale = 100.0 if kind == "xyz" else 1.0
            ax.errorbar([r["sigma"] * scale for r in rr], [r["on_target"] for r in rr],
                        yerr=[r["on_target_std"] for r in rr], marker="o", capsize=3,
                        label=f"{v} ({rr[0]['attention']})")
        ax.set_xlabel("point position noise sigma (cm)" if kind == "xyz"
                      else "feature noise sigma (relative to the unit feature)")
        ax.set_ylabel("on-target rate (held-out grasps)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m vla_policy.noise --data DIR [DIR ...] --out results``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, help="held-out shard directories (vla collect)")
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                    help="shipped checkpoint names or checkpoint directories")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    ap.add_argument("--repeats", type=int, default=3, help="noise draws per level")
    ap.add_argument("--task", default="grasp")
    ap.add_argument("--out", type=Path, default=Path("results"))
    args = ap.parse_args(argv)

    import torch

    from vla_policy.data import load_samples
    from vla_policy.policy import Policy

    torch.manual_seed(0)
    samples = [s for d in args.data for s in load_samples(Path(d), task=args.task)]
    models = {v: Policy.load(v).model.eval() for v in args.variants}
    t0 = time.perf_counter()
    tables = {kind: noise_table(models, samples, kind, repeats=args.repeats) for kind in args.kinds}
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"name": "noise_table", "data": [str(d) for d in args.data], "task": args.task,
              "decisions": len(samples), "repeats": args.repeats, "seconds": time.perf_counter() - t0,
              "noise": {"xyz": "i.i.d. Gaussian on point positions, sigma in metres",
                        "features": "i.i.d. Gaussian on fused features, expected norm sigma, renormalised"},
              "tables": tables}
    md = "\n".join(to_markdown(rows) for rows in tables.values())
    (args.out / "noise_table.json").write_text(json.dumps(result, indent=1))
    (args.out / "noise_table.md").write_text(md)
    plot(tables, args.out / "noise_table.png")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
