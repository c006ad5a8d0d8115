# SPDX-License-Identifier: Apache-2.0
r"""Ablation table and plot from ``vla eval`` outputs: one folder per variant, one JSON per cell.

Tooling. Reads ``<root>/<variant>/eval_*.json`` (``vla eval --out <root>/<variant>``), and writes
``<out>.md`` (table), ``<out>.json`` (numbers) and ``<out>.png`` (bars with 95 % Wilson intervals).
A cell's rate is the first-attempt success for grasp and pick-and-place, the success for place
(one attempt). With 20 cases a cell the interval is about +-0.2, which is what "run-to-run spread"
means for a single evaluation: differences inside it are not differences.

Usage::

    python -m vla_sim.ablation --root outputs/eval_s8/abl --out results/ablation_session8 \
        --order BASE SR-A SR SR+PosA SR+MGFA SR-ReLU
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def cell_rate(result: dict[str, Any]) -> tuple[float, int]:
    """(rate, cases) of one ``vla eval`` JSON: first attempt for grasp / pick-and-place, else success."""
    s, task = result["summary"], result["meta"]["task"]
    rate = s.get("first_attempt_success_rate") if task in ("grasp", "pickplace") else s["success_rate"]
    return float(rate if rate is not None else s["success_rate"]), int(s["episodes"])


def collect(root: Path) -> dict[str, dict[str, dict[str, float]]]:
    """{variant: {"<task> <split>": {rate, n, lo, hi, success_within}}} from ``root``."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for f in sorted(root.glob("*/eval_*.json")):
        res = json.loads(f.read_text())
        meta = res["meta"]
        cell = f"{meta['task']} {meta['split']}"
        if meta.get("phrasing", "templated") != "templated":
            cell += f" ({meta['phrasing']})"
        rate, n = cell_rate(res)
        lo, hi = wilson(round(rate * n), n)
        table.setdefault(f.parent.name, {})[cell] = {"rate": rate, "n": n, "lo": lo, "hi": hi,
                                                     "success": float(res["summary"]["success_rate"])}
    if not table:
        raise SystemExit(f"no vla eval results (<variant>/eval_*.json) under {root}")
    return table


def write(table: dict[str, dict[str, dict[str, float]]], out: Path, order: list[str] | None = None) -> None:
    """``out``.md / .json / .png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in (order or []) if v in table] + sorted(set(table) - set(order or []))
    cells = sorted({c for v in table.values() for c in v})
    lines = ["| variant | " + " | ".join(cells) + " |", "|---|" + "---|" * len(cells)]
    for v in variants:
        row = []
        for c in cells:
            x = table[v].get(c)
            row.append("-" if x is None else f"{x['rate']:.2f} [{x['lo']:.2f}, {x['hi']:.2f}]")
        lines.append(f"| {v} | " + " | ".join(row) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(
        "Rate per cell (first attempt for grasp and pick-and-place, success for place) "
        "[95 % Wilson interval]\n\n" + "\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(table, indent=1))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cells) * len(variants) / 3), 4))
    width = 0.8 / max(1, len(variants))
    for i, v in enumerate(variants):
        xs = [j + (i - (len(variants) - 1) / 2) * width for j in range(len(cells))]
        ys = [table[v].get(c, {}).get("rate", float("nan")) for c in cells]
        err = [[y - table[v][c]["lo"] if c in table[v] else 0 for c, y in zip(cells, ys)],
               [table[v][c]["hi"] - y if c in table[v] else 0 for c, y in zip(cells, ys)]]
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=v)
    ax.set_xticks(range(len(cells)), cells)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate (first attempt / place success)")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m vla_sim.ablation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="one vla eval --out folder per variant")
    ap.add_argument("--out", type=Path, required=True, help="path stem of the .md / .json / .png")
    ap.add_argument("--order", nargs="*", default=None, help="variant folders in table order")
    args = ap.parse_args(argv)
    table = collect(args.root)
    write(table, args.out, args.order)
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
