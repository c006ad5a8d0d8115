# SPDX-License-Identifier: Apache-2.0
"""``vla train``: imitation training of the alignment policy on collected shards.

Usage::

    vla train --variant SR --data data/grasp data/place --out runs/SR
    torchrun --nproc-per-node 4 -m vla_policy.train --variant SR --data data/grasp --out runs/SR

Adam (the SR paper, Sec. 4, uses lr 1e-4 and batch 32; the defaults here, lr 5e-4 and batch 8,
are the settings of the shipped checkpoints), a fixed number of optimiser steps (``--steps``) through
the package's one training loop (``trainer.fit``), seeded; cross-entropy against the expert's
candidate plus the variant's auxiliary losses (model.py). Samples are split into train /
validation by episode, so validation scenes are never trained on. Written under ``--out``:

* ``metrics.jsonl``: one JSON object per logged step (train losses) and per validation
  (every ``--eval-every`` steps and after the last);
* ``loss.png``: the loss / accuracy curves;
* ``last/`` and ``best/``: policy checkpoints (``config.json`` + fp16 ``model.safetensors``; ``best``
  by validation accuracy), loadable with ``Policy.load``;
* ``training_state.pt``: model, optimiser, step, the pass's sample order and RNG states, from which
  a rerun with the same ``--out`` resumes (loaded with ``torch.load(weights_only=True)``); a larger
  ``--steps`` continues a finished run.

After training, the target-not-found threshold is calibrated on the validation split (true
instruction vs an instruction naming an object absent from the scene; balanced accuracy) and
stored in ``best/config.json`` (``meta.presence_threshold``); when the calibration's balanced accuracy
is below ``MIN_PRESENCE_BALANCED_ACC`` the threshold stays None (an unreliable detector would
refuse real targets) and the reason is recorded. ``--presence-from SR`` instead copies the grounding
of an installed checkpoint (the shared presence and attribute recognisers, threshold, grounding
weight): how the shipped variants are retrained without a recogniser of their own.

Distributed: when ``WORLD_SIZE`` is set (torchrun), the process group is initialised (``nccl`` on
CUDA, else ``gloo``), each rank trains on its shard of every batch and the model is wrapped in DDP;
only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_policy.configuration import VARIANTS, PolicyConfig
from vla_policy.data import collate, load_samples, pose_distance
from vla_policy.model import PolicyModel
from vla_policy.policy import CHECKPOINT_DIR, Policy
from vla_policy.trainer import TrainerConfig, fit, make_optimizer

logger = logging.getLogger(__name__)
ON_TARGET_MARGIN_M = 0.01  # a grasp "on the target" lies in its AABB grown by this (gripper reach)
MIN_PRESENCE_BALANCED_ACC = 0.75  # below this the target-not-found threshold is not enabled
GRAD_CLIP = 1.0  # global gradient-norm clip of every policy step
# meta entries that belong to the grounding shared by the installed checkpoints, not to a policy's weights
GROUNDING_META_PREFIXES = ("presence_", "attributes_", "combined_", "grounding_")


def split_by_episode(samples: list[dict[str, Any]], val_frac: float, seed: int = 0):
    """(train, val) with whole episodes on one side."""
    eps = sorted({(s["meta"].get("task", ""), s["meta"].get("episode", i)) for i, s in enumerate(samples)})
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_frac * len(eps)))) if val_frac > 0 and len(eps) > 1 else 0
    val_eps = {eps[i] for i in rng.permutation(len(eps))[:n_val]}
    train, val = [], []
    for i, s in enumerate(samples):
        key = (s["meta"].get("task", ""), s["meta"].get("episode", i))
        (val if key in val_eps else train).append(s)
    return train, val


@torch.no_grad()
def evaluate(model: PolicyModel, samples: list[dict[str, Any]], batch_size: int = 32,
             tol_m: float = 0.02, tol_deg: float = 15.0) -> dict[str, float]:
    """Validation metrics.

    ``val_acc``: the expert's (labelled) candidate is chosen; ``val_near``: the chosen candidate is
    within ``tol_m`` and ``tol_deg`` of the expert's own pose (grasps: 180 deg symmetric about z;
    places: ``tol_m`` in the table plane);
    ``val_hit``: either; ``val_on_target`` (grasp samples whose metadata has ``object_aabbs``,
    counted in ``val_n_target``): the chosen grasp position lies in the instructed object's world
    AABB grown by ``ON_TARGET_MARGIN_M`` - the pick is on the right object, whatever the grasp.
    """
    model.eval()
    cfg = model.cfg
    hits = near = either = n = on_tgt = n_tgt = 0
    loss_sum = 0.0
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        batch = collate(chunk, cfg.num_points, cfg.max_candidates, rng=np.random.default_rng(0))
        out = model(batch)
        _, logs = model.loss(batch, out)
        loss_sum += logs["ce"] * len(chunk)
        pred = out["logits"].argmax(-1).numpy()
        for j, s in enumerate(chunk):
            lab = int(batch["label"][j])
            hits += int(pred[j] == lab)
            cands = s["candidates"]
            order = np.arange(len(cands))
            lab0, last = int(s["label"]), cfg.max_candidates - 1
            if lab0 > last:  # mirror collate's swap
                order[[last, lab0]] = order[[lab0, last]]
            chosen = cands[order[pred[j]]]
            expert = np.asarray(s["target_pose"], dtype=np.float64)
            if s["meta"].get("task") == "place":  # release point: only the table-plane position matters
                close = bool(np.linalg.norm(chosen[:2, 3] - expert[:2, 3]) <= tol_m)
            else:
                d, a = pose_distance(chosen[None], expert[None])
                close = bool(d[0] <= tol_m and a[0] <= tol_deg)
            near += int(close)
            aabbs = s["meta"].get("object_aabbs")
            if s["meta"].get("task") == "grasp" and aabbs and s["meta"].get("target") in aabbs:
                n_tgt += 1
                on_tgt += int(on_object(chosen[:3, 3], aabbs[s["meta"]["target"]]))
            either += int(close or pred[j] == lab)
            n += 1
    model.train()
    m = max(n, 1)
    return {"val_acc": hits / m, "val_near": near / m, "val_hit": either / m, "val_ce": loss_sum / m,
            "val_n": n, "val_on_target": on_tgt / max(n_tgt, 1), "val_n_target": n_tgt}


def off_target(sample: dict[str, Any]) -> bool:
    """A grasp sample whose expert grasp lies off the instructed object (a blocker cleared first).

    Needs ``object_aabbs`` in the metadata (collections since it was added); others count as on target.
    """
    m = sample["meta"]
    aabbs = m.get("object_aabbs")
    if m.get("task") != "grasp" or not aabbs or m.get("target") not in aabbs:
        return False
    return not on_object(np.asarray(sample["target_pose"])[:3, 3], aabbs[m["target"]])


def on_object(p: np.ndarray, aabb: list, margin_m: float | None = None) -> bool:
    """Whether position ``p`` (3,) m lies in ``aabb`` ([min (3,), max (3,)] m) grown by ``margin_m``."""
    m = ON_TARGET_MARGIN_M if margin_m is None else margin_m
    lo, hi = np.asarray(aabb[0]) - m, np.asarray(aabb[1]) + m
    return bool(np.all(p >= lo) and np.all(p <= hi))


def heldout_samples(task: str, seeds: range, clip: str = "compact", split: str = "seen"
                    ) -> list[dict[str, Any]]:
    """Fresh expert-labelled decisions (first step of each episode) on held-out seeds, live in the sim."""
    from vla_perception.clip_features import ClipFeatureExtractor
    from vla_policy.collect import RENDER_SIZE, run_episode
    from vla_sim.world import SimWorld

    extractor = ClipFeatureExtractor(clip)
    out = []
    with SimWorld(robot="ur5", seed=1, render_size=RENDER_SIZE) as world:
        for seed in seeds:
            for arrays, meta in run_episode(world, extractor, task, seed, steps=1, key_steps=False,
                                            split=split):
                out.append({**arrays, "meta": meta})
    return out


def vocabulary_from_catalogue(splits: tuple[str, ...] = ("seen", "unseen")) -> list[dict[str, str]]:
    """The robot's object vocabulary: ``name``, ``colour``, ``shape``, ``category``, ``function`` per object.

    Taken from ``vla_sim.objects.CATALOGUE`` (known words only; ``novel_word`` objects use words the
    compact CLIP never read). Training tooling only: the vocabulary is stored with the presence
    recogniser at calibration time, so the policy never imports the simulator.
    """
    from vla_sim import objects as objlib

    return [{"name": o.name, "colour": o.colour.name, "shape": o.shape, "category": o.category,
             "function": o.function} for o in objlib.CATALOGUE if o.split in splits]


def _presence_labels(xyz: np.ndarray, idx: np.ndarray, aabbs: dict[str, list], names: list[str],
                     margin_m: float = 0.002) -> np.ndarray:
    """(M,) vocabulary index of the one object AABB holding each point ``xyz[idx]``; -1 if none or several."""
    p = np.asarray(xyz)[idx]
    lab, hits = np.full(len(idx), -1), np.zeros(len(idx), dtype=int)
    for name, (lo, hi) in aabbs.items():
        if name not in names:
            continue
        inside = np.all(p >= np.asarray(lo) - margin_m, 1) & np.all(p <= np.asarray(hi) + margin_m, 1)
        lab[inside] = names.index(name)
        hits += inside
    lab[hits != 1] = -1
    return lab


MIN_VISIBLE_TARGET_POINTS = 20  # labelled points of its target a stored cloud needs for a true instruction


def target_visible(sample: dict[str, Any], names: list[str], min_points: int = MIN_VISIBLE_TARGET_POINTS,
                   idx: np.ndarray | None = None) -> bool:
    """Whether the sample's target has ``min_points`` object points in its stored cloud.

    Points are the object points of :func:`policy.presence_descriptors` (``idx``: their indices
    when the caller has them already) labelled by the AABBs of the meta (training metadata); a
    sample without AABBs counts as visible (nothing to check).
    """
    from vla_policy.policy import presence_descriptors

    aabbs = sample["meta"].get("object_aabbs")
    target = sample["meta"].get("target")
    if not aabbs or target not in names:
        return True
    if idx is None:
        idx, _ = presence_descriptors(sample["xyz"], sample.get("rgb"), sample["features"])
    lab = _presence_labels(sample["xyz"], idx, aabbs, names)
    return int((lab == names.index(target)).sum()) >= min_points


def presence_pairs(usable: list[dict[str, Any]], vocab: list[dict[str, str]], rng: np.random.Generator
                   ) -> list[tuple[dict, dict, bool, bool]]:
    """(sample, negative sample, strict negative?, same colour as a present object?) per sample and pool.

    A negative is the instruction of another sample whose target is absent from this scene; a
    strict one also describes no present object ("I need a tool" is no negative beside a wrench).
    """
    from vla_policy.policy import instruction_referents

    names = [v["name"] for v in vocab]
    colour = {v["name"]: v["colour"] for v in vocab}

    def describes(instruction: str, kind: str) -> set[str]:
        return {names[i] for i in instruction_referents(instruction, vocab, kind)}

    pairs = []
    for s in usable:
        scene = set(s["meta"]["scene_objects"])
        others = [o for o in usable if o["meta"]["target"] not in scene]
        strict = [o for o in others
                  if not describes(o["meta"]["instruction"], o["meta"].get("task", "grasp")) & scene]
        for pool, is_strict in ((strict, True), (others, False)):
            if pool:
                o = pool[int(rng.integers(len(pool)))]
                tgt = colour.get(o["meta"]["target"])
                pairs.append((s, o, is_strict, any(colour.get(n) == tgt for n in scene)))
    return pairs


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties count half."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)


def _best_threshold(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy) maximising 0.5 (P(pos >= t) + P(neg < t))."""
    best_t, best_bacc = float(np.min(np.concatenate([pos, neg]))), 0.0
    for t in np.unique(np.concatenate([pos, neg])):
        bacc = 0.5 * ((pos >= t).mean() + (neg < t).mean())
        if bacc > best_bacc:
            best_t, best_bacc = float(t), float(bacc)
    return best_t, best_bacc


@torch.no_grad()
def calibrate_presence(policy: Policy, samples: list[dict[str, Any]], seed: int = 0,
                       fit_samples: list[dict[str, Any]] | None = None, hidden: int = 0,
                       min_tpr: float | None = None, inputs: dict[str, list[str]] | None = None
                       ) -> dict[str, Any]:
    """Fit the presence statistic and its target-not-found threshold (returned as ``meta`` entries).

    Pairs: each sample's own instruction (positive) and, in the same cloud, the instruction of
    another sample that describes nothing in this scene (negative: its target is absent *and* no
    present object fits its description - "I need a tool" is no negative in a scene with a wrench).

    Statistic ``recogniser`` (policy.py) when samples with ``object_aabbs`` exist in ``fit_samples``
    (default ``samples``): the colour / shape / category heads are fitted on their object points
    (labels = the AABB holding the point; training metadata only). Samples of the fit set are scored
    by heads fitted on the other half of the episodes (2-fold), so the threshold is not tuned on
    in-sample scores. Otherwise the ``relevance`` statistic (``Policy.presence_stat``) is calibrated.
    The threshold maximises balanced accuracy (or, with ``min_tpr``, is the highest one that still
    accepts that share of the true instructions); below ``MIN_PRESENCE_BALANCED_ACC`` it stays
    None. ``hidden``: width of the recogniser's shared hidden layer (0 = linear heads); with
    ``inputs`` (attribute -> descriptor groups) each attribute gets a hidden layer of that width
    over its own groups (``PresenceRecogniser.fit``).
    Also reported: ``presence_balanced_acc_any_absent`` (negatives only need an absent target, as
    before 2026-11-22) and ``presence_balanced_acc_same_colour`` (negatives whose target shares its
    colour with a present object) at the chosen threshold.
    """
    from vla_policy.policy import (
        PresenceRecogniser,
        instruction_referents,
        presence_descriptors,
    )

    rng = np.random.default_rng(seed)
    cfg = policy.cfg
    usable = [s for s in samples if s["meta"].get("scene_objects") and s["meta"].get("target")]
    if len(usable) < 4:
        return {"presence_threshold": None, "calibration": "too few samples with scene metadata"}
    vocab = vocabulary_from_catalogue()
    names = [v["name"] for v in vocab]

    pairs = presence_pairs(usable, vocab, rng)
    if not any(p[2] for p in pairs):
        return {"presence_threshold": None, "calibration": "no negative instructions could be built"}

    fit = [s for s in (fit_samples if fit_samples is not None else samples) if s["meta"].get("object_aabbs")]
    scorers: dict[int, Any] = {}
    desc: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(sample) -> presence_descriptors of its cloud
    if len(fit) >= 20:
        for s in fit + usable:
            if id(s) not in desc:
                desc[id(s)] = presence_descriptors(s["xyz"], s.get("rgb"), s["features"])

        def fit_on(part: list[dict[str, Any]]) -> PresenceRecogniser:
            xs, ys = [], []
            for s in part:
                idx, d = desc[id(s)]
                lab = _presence_labels(s["xyz"], idx, s["meta"]["object_aabbs"], names)
                xs.append(d[lab >= 0])
                ys.append(lab[lab >= 0])
            if hidden > 0:  # minibatch Adam over the shared layer (see PresenceRecogniser.fit)
                return PresenceRecogniser.fit(np.concatenate(xs), np.concatenate(ys), vocab, seed=seed,
                                              hidden=hidden, steps=1500, lr=3e-3, inputs=inputs)
            return PresenceRecogniser.fit(np.concatenate(xs), np.concatenate(ys), vocab, seed=seed)

        recogniser = fit_on(fit)
        eps = sorted({s["meta"].get("episode", i) for i, s in enumerate(fit)})
        fold_of = dict(zip(eps, np.random.default_rng(seed).permutation(len(eps)) % 2))
        folds = [[s for i, s in enumerate(fit) if fold_of[s["meta"].get("episode", i)] == f] for f in (0, 1)]
        fold_rec = [fit_on(folds[1 - f]) for f in (0, 1)]
        for f in (0, 1):
            for s in folds[f]:
                scorers[id(s)] = fold_rec[f]

        def score(s: dict[str, Any], text: str, kind: str) -> float:
            rec = scorers.get(id(s), recogniser)
            v = rec.presence(desc[id(s)][1], instruction_referents(text, vocab, kind))
            return float("inf") if v is None else v  # an instruction with no known words is never refused
        out: dict[str, Any] = {"presence_statistic": "recogniser", "presence_fit_scenes": len(fit),
                               "presence_recogniser": recogniser.to_meta()}
    else:
        def score(s: dict[str, Any], text: str, kind: str) -> float:
            other = next(o for o in usable if o["meta"]["instruction"] == text)
            batch = collate([s], cfg.num_points, cfg.max_candidates, rng=np.random.default_rng(0),
                            text_override=[other["text"]])
            return float(policy.presence_stat(policy.model(batch), batch)[0])
        out = {"presence_statistic": "relevance"}

    # a true instruction counts only where its target is in the stored cloud: with a handful of
    # its points or none (occluded, or left out by the object-biased sub-sample) nothing can be
    # recognised, and such samples (67 of 384 judged ones in data/grasp_v4, accepted 0.37 against
    # 0.965 for the rest) dragged the threshold that accepts 0.97 down to 0.004
    visible = [s for s in usable if target_visible(s, names, idx=desc[id(s)][0] if id(s) in desc else None)]
    pos = {id(s): score(s, s["meta"]["instruction"], s["meta"].get("task", "grasp")) for s in visible}
    neg = np.array([score(s, o["meta"]["instruction"], s["meta"].get("task", "grasp"))
                    for s, o, _, _ in pairs])
    strict = np.array([p[2] for p in pairs])
    same = np.array([p[3] for p in pairs])
    seen_pos = np.array([id(p[0]) in pos for p in pairs])  # pairs whose own target is visible
    pos_s = np.array([pos.get(id(p[0]), np.nan) for p in pairs])
    strict_pos = strict & seen_pos
    pos_a = np.array(list(pos.values()))
    best_t, best_bacc = _best_threshold(pos_s[strict_pos], neg[strict])
    if min_tpr is not None:  # the highest threshold that accepts min_tpr of the true instructions
        finite = np.sort(pos_a[np.isfinite(pos_a)])
        best_t = float(finite[int(np.floor((1.0 - min_tpr) * len(finite)))]) if len(finite) else best_t
        best_bacc = float(0.5 * ((pos_s[strict_pos] >= best_t).mean() + (neg[strict] < best_t).mean()))
    roc = roc_auc(pos_a[np.isfinite(pos_a)], neg[strict])
    finite_pos = np.sort(pos_a[np.isfinite(pos_a)])
    operating = []  # (accepted share of true instructions, threshold, refused share of absent ones)
    for want in (0.80, 0.85, 0.90, 0.95, 0.97):
        if len(finite_pos):
            t = float(finite_pos[int(np.floor((1.0 - want) * len(finite_pos)))])
            operating.append([want, t, float((neg[strict] < t).mean())])

    def bacc(mask: np.ndarray) -> float:
        if not mask.any():
            return float("nan")
        return float(0.5 * ((pos_a >= best_t).mean() + (neg[mask] < best_t).mean()))

    out.update({"presence_balanced_acc": best_bacc, "presence_best_threshold": best_t,
                "presence_tpr": float((pos_a >= best_t).mean()),
                "presence_tnr": float((neg[strict] < best_t).mean()),
                "presence_balanced_acc_any_absent": bacc(~strict),
                "presence_balanced_acc_same_colour": bacc(strict & same),
                "presence_pos_median": float(np.median(pos_a)),
                "presence_neg_median": float(np.median(neg[strict])),
                "presence_n": int(len(pos_a)), "presence_n_neg": int(strict.sum()), "presence_auc": roc,
                "presence_hidden": hidden, "presence_inputs": inputs, "presence_operating_points": operating,
                "presence_n_target_not_visible": len(usable) - len(visible)})
    if best_bacc < MIN_PRESENCE_BALANCED_ACC:  # an unreliable detector would refuse real targets
        out.update({"presence_threshold": None,
                    "calibration": f"target-not-found disabled: balanced accuracy {best_bacc:.2f} "
                                   f"< {MIN_PRESENCE_BALANCED_ACC}"})
    else:
        out.update({"presence_threshold": best_t,
                    "calibration": f"target-not-found enabled ({out['presence_statistic']} statistic): "
                                   f"balanced accuracy {best_bacc:.2f} on {len(pos_a)} decisions"})
    return out


def plot_metrics(metrics_path: Path, out_png: Path) -> None:
    """Loss and accuracy curves from ``metrics.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    tr = [r for r in rows if r.get("split") == "train"]
    va = [r for r in rows if r.get("split") == "val"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    if tr:
        a1.plot([r["step"] for r in tr], [r["loss"] for r in tr], label="train loss")
        a1.plot([r["step"] for r in tr], [r["ce"] for r in tr], label="train ce", alpha=0.7)
        a2.plot([r["step"] for r in tr], [r["acc"] for r in tr], label="train acc", alpha=0.7)
    if va:
        a1.plot([r["step"] for r in va], [r["val_ce"] for r in va], "o-", label="val ce")
        a2.plot([r["step"] for r in va], [r["val_acc"] for r in va], "o-", label="val acc (exact)")
        a2.plot([r["step"] for r in va], [r["val_near"] for r in va], "s-", label="val within 2 cm / 15 deg")
    a1.set_xlabel("step")
    a2.set_xlabel("step")
    a1.legend()
    a2.legend()
    a1.set_yscale("log")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for it in items:
        if "=" not in it:
            raise SystemExit(f"--set expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


@dataclass(frozen=True)
class TrainRunConfig:
    """One ``vla train`` run: what to train on, where to write, and the optimisation (:class:`TrainerConfig`).

    ``eval_every`` and ``log_every`` count optimiser steps; validation and a checkpoint also follow
    the last step. ``presence_from``: copy the grounding entries of that installed checkpoint's meta
    (the shared presence / attribute recognisers, their thresholds, the grounding weights) into
    ``best/`` instead of calibrating a recogniser of the run's own.
    """

    variant: str
    data: tuple[str, ...]
    out: str
    trainer: TrainerConfig
    batch_size: int = 8
    val_frac: float = 0.1
    threads: int = 1
    log_every: int = 10
    eval_every: int = 500
    drop_off_target: bool = False
    resume: bool = True
    overrides: tuple[tuple[str, Any], ...] = ()
    presence_from: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainRunConfig:
        """The run the parsed ``vla train`` command line describes."""
        return cls(variant=args.variant, data=tuple(args.data), out=args.out,
                   trainer=TrainerConfig(steps=args.steps, lr=args.lr, grad_clip=GRAD_CLIP, seed=args.seed),
                   batch_size=args.batch_size, val_frac=args.val_frac, threads=args.threads,
                   log_every=args.log_every, eval_every=args.eval_every, drop_off_target=args.drop_off_target,
                   resume=not args.no_resume,
                   overrides=tuple(_parse_overrides(args.set).items()), presence_from=args.presence_from)


def grounding_meta(checkpoint: str | Path) -> dict[str, Any]:
    """The grounding entries of an installed checkpoint's meta (the shared recognisers and their numbers).

    A recogniser stored as a directory is given as an absolute path (the copy lives elsewhere).
    """
    pol = Policy.load(checkpoint)
    out = {k: v for k, v in pol.meta.items() if k.startswith(GROUNDING_META_PREFIXES) or k == "calibration"}
    if isinstance(out.get("presence_recogniser"), str):
        out["presence_recogniser"] = str((pol.directory / out["presence_recogniser"]).resolve())
    return out


def install_checkpoint(run_checkpoint: str | Path, variant: str) -> Path:
    """Ship a run's checkpoint as ``checkpoints/<variant>`` (weights, config, the run's ``loss.png``).

    A recogniser the checkpoint takes from ``checkpoints/presence`` is referred to as ``../presence``
    again, as in the other shipped variants.
    """
    src = Path(run_checkpoint)
    pol = Policy.load(src)
    if pol.cfg.variant != variant:
        raise ValueError(f"{src} holds a {pol.cfg.variant} policy, not {variant}")
    dest = CHECKPOINT_DIR / variant
    shipped_presence = (CHECKPOINT_DIR / "presence").resolve()
    if isinstance(pol.meta.get("presence_recogniser"), str) and (
            pol.directory / pol.meta["presence_recogniser"]).resolve() == shipped_presence:
        pol.meta["presence_recogniser"] = "../presence"
    for stale in ("model.safetensors", "config.json"):
        (dest / stale).unlink(missing_ok=True)
    pol.save(dest)
    for extra in ("loss.png",):  # the run's curves sit next to best/ and last/
        if (src.parent / extra).exists():
            shutil.copyfile(src.parent / extra, dest / extra)
    logger.info("installed %s as %s", src, dest)
    return dest


def train(run: TrainRunConfig | argparse.Namespace) -> dict[str, Any]:
    """Train the policy as ``run`` says (a parsed command line is converted); returns the final summary."""
    if isinstance(run, argparse.Namespace):
        run = TrainRunConfig.from_args(run)
    tcfg = run.trainer
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    torch.set_num_threads(run.threads)
    torch.manual_seed(tcfg.seed)
    out = Path(run.out)
    samples = []
    for d in run.data:
        samples += load_samples(Path(d))
    if run.drop_off_target:
        samples = [s for s in samples if not off_target(s)]
    train_s, val_s = split_by_episode(samples, run.val_frac, tcfg.seed)
    clip_info = {}
    for d in run.data:
        info_path = Path(d) / "collect.json"
        if info_path.exists():
            info = json.loads(info_path.read_text())
            clip_info = {"clip": info.get("clip"), "clip_sha256": info.get("clip_sha256")}
    feature_dim = int(samples[0]["features"].shape[1])
    cfg = PolicyConfig.from_variant(run.variant, feature_dim=feature_dim, lr=tcfg.lr,
                                    batch_size=run.batch_size, **dict(run.overrides))
    model = PolicyModel(cfg)
    tcfg = TrainerConfig(**{**tcfg.to_dict(), "weight_decay": cfg.weight_decay})
    opt = make_optimizer(model.parameters(), tcfg)
    n_batches = max(1, len(train_s) // cfg.batch_size)  # per pass over the data (last partial batch dropped)
    state: dict[str, Any] = {"step": 0, "best": -1.0, "order": None,
                             "rng": np.random.default_rng(tcfg.seed + rank)}
    state_path = out / "training_state.pt"
    if state_path.exists() and run.resume:
        st = torch.load(state_path, weights_only=True)
        same = {**st.get("trainer", {}), "steps": tcfg.steps} == tcfg.to_dict()  # more steps may follow
        if st["config"] != cfg.to_dict() or not same:
            raise SystemExit(f"{state_path} was written with another config; use a new --out or --no-resume")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optim"])
        state.update(step=int(st["step"]), best=float(st["best"]), order=st["order"].numpy())
        torch.set_rng_state(st["torch_rng"])
        state["rng"] = np.random.default_rng(int(st["np_seed"]))
        logger.info("resumed from %s at step %d", state_path, state["step"])
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "data.json").write_text(json.dumps(
            {"data": list(run.data), "train": len(train_s), "val": len(val_s), "variant": run.variant,
             "batches_per_pass": n_batches, "trainer": tcfg.to_dict()}, indent=2))
    metrics = (out / "metrics.jsonl").open("a") if rank == 0 else None
    per_rank = max(1, cfg.batch_size // world)
    t_start = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=tcfg.steps, initial=state["step"], desc=f"train {run.variant}", disable=rank != 0,
               unit="step")
    acc_log: list[dict[str, float]] = []

    def step_loss(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        b = step % n_batches
        if b == 0 or state["order"] is None:  # a new pass over the training split
            state["order"] = state["rng"].permutation(len(train_s))
        order = state["order"]
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size][rank * per_rank:(rank + 1) * per_rank]
        batch = collate([train_s[i] for i in idx], cfg.num_points, cfg.max_candidates, rng=state["rng"])
        loss, logs = model.loss(batch, net(batch))
        return loss, logs

    def on_step(step: int, logs: dict[str, float]) -> None:
        state["step"] = step
        bar.update(1)
        acc_log.append(logs)
        epoch = step / n_batches
        if metrics and step % run.log_every == 0:
            row = {"split": "train", "step": step, "epoch": round(epoch, 3),
                   "time_s": time.perf_counter() - t_start}
            row.update({k: float(np.mean([lg[k] for lg in acc_log if k in lg])) for k in acc_log[-1]})
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
            acc_log.clear()
        if rank != 0 or not (step % run.eval_every == 0 or step == tcfg.steps):
            return
        ev = evaluate(model, val_s or train_s[:64]) if (val_s or train_s) else {}
        ev.update(split="val", step=step, epoch=round(epoch, 3), time_s=time.perf_counter() - t_start)
        metrics.write(json.dumps(ev) + "\n")
        metrics.flush()
        meta = {**clip_info, "variant": run.variant, "step": step, "epoch": round(epoch, 3),
                "train_samples": len(train_s), "val_samples": len(val_s), "trainer": tcfg.to_dict(),
                "train_data": list(run.data),
                **{k: ev[k] for k in ("val_acc", "val_near", "val_hit", "val_on_target") if k in ev}}
        Policy(model, meta).save(out / "last")
        if ev.get("val_acc", 0.0) > state["best"]:
            state["best"] = ev["val_acc"]
            Policy(model, meta).save(out / "best")
        np_seed = int(state["rng"].integers(2**31))
        torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": step,
                    "best": state["best"], "config": cfg.to_dict(), "trainer": tcfg.to_dict(),
                    "order": torch.as_tensor(state["order"]), "torch_rng": torch.get_rng_state(),
                    "np_seed": np_seed}, state_path)
        state["rng"] = np.random.default_rng(np_seed)  # as a run resumed from here goes on
        plot_metrics(out / "metrics.jsonl", out / "loss.png")

    fit(model.parameters(), step_loss, tcfg, optimizer=opt, start_step=state["step"], on_step=on_step)
    bar.close()
    summary: dict[str, Any] = {"step": state["step"], "best_val_acc": state["best"]}
    if rank == 0 and (out / "best" / "config.json").exists():
        pol = Policy.load(out / "best")
        if run.presence_from:
            cal = grounding_meta(run.presence_from)
        else:
            cal = calibrate_presence(pol, val_s or train_s, tcfg.seed, fit_samples=train_s)
        pol.meta.update(cal)
        pol.save(out / "best")
        summary.update({k: v for k, v in cal.items() if not isinstance(v, (dict, list))})
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return summary


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``vla train``."""
    p = argparse.ArgumentParser(prog="vla train", description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="SR", choices=list(VARIANTS))
    p.add_argument("--data", nargs="+", required=True, help="shard directories written by `vla collect`")
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl, loss.png)")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps in all (the run's bound)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--val-frac", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log-every", type=int, default=10, help="steps between logged training losses")
    p.add_argument("--eval-every", type=int, default=500, help="steps between validation + checkpoint")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing training_state.pt")
    p.add_argument("--drop-off-target", action="store_true",
                   help="drop grasp samples whose expert grasp is off the instructed object (blockers)")
    p.add_argument("--presence-from", default=None, metavar="CHECKPOINT",
                   help="take the grounding (presence / attribute recognisers, thresholds) from this "
                        "installed checkpoint, e.g. SR, instead of calibrating the run's own")
    p.add_argument("--install", action="store_true",
                   help="ship best/ as the variant's checkpoint (checkpoints/<variant>) when the run ends")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="PolicyConfig overrides")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla train``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    for d in args.data:
        if not Path(d).is_dir():
            raise SystemExit(f"--data {d}: no such directory; collect data first with `vla collect`")
    summary = train(args)
    if args.install:
        summary["installed"] = str(install_checkpoint(Path(args.out) / "best", args.variant))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
