# SPDX-License-Identifier: Apache-2.0
"""Learned pre-grasping prior (SR paper 001, Sec. 3.4.1): ranks and prunes the geometric grasps.

The paper's action-guided pre-grasping model scores grasp candidates before the language-conditioned
policy chooses among them, to cut the action search space. Here it is a tiny PointNet that looks at
each geometric candidate of ``priors.grasp_set`` through the gripper's eyes:

* input per candidate (``candidate_features``): the fused-cloud points above the support plane that
  fall inside a box around the gripper, expressed in the TCP frame (x finger width, y closing, z
  approach; ``CROP_LO``/``CROP_HI``), ``POINTS`` of them sampled with replacement (divided by
  ``SCALE``), plus ``GLOBAL`` scalars from the same cloud: the geometric score, the grasp width,
  top-down-ness, TCP height above the plane, the number of points in the box, the TCP's horizontal
  position and the approach and closing directions (the arm's reach). Nothing else: no simulator
  state.
* output: a logit of "this grasp, executed, lifts the object it is on" (target-agnostic: the
  policy picks the target; a grasp that is unreachable for the arm, slips, or lifts a neighbour
  counts as a failure).

Labels come from the simulator at training time only (``collect``): seeded grasp scenes of the seen
split (seeds from 200000, disjoint from the benchmark cases' 1000-1019, the policy data's 0-499 and
the held-out 900000+), rendered and fused like ``vla collect`` does (320x240, depth noise, constant
features: the prior needs geometry only); the geometric candidates are computed, and up to
``--per-scene`` of them (the geometric top-1 plus random others) are executed with
``vla_sim.primitives.execute_grasp`` from the same saved physics state (``saveState``/
``restoreState``); label 1 when ``vla_sim.checks.check_grasp`` reports the object the grasp is
aimed at (simulator state, training time only: the object whose box holds the TCP) held and lifted
>= 10 cm. ``train`` fits the net (binary cross-entropy, scene-level validation split, random
re-sampling of the crop points and the gripper's 180-degree symmetry as augmentation) and writes
``checkpoints/grasp_prior/`` (``model.safetensors`` + ``prior_config.json``). ``evaluate``
executes, on scenes not trained on (seeds from 300000), the top-1 candidate by the learned prior,
the top-1 by the geometric score and random candidates (see ``evaluate``).

Commands: ``python -m vla_policy.grasp_prior collect|train|evaluate --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vla_policy.trainer import TrainerConfig, fit

logger = logging.getLogger(__name__)

CHECKPOINT = Path(__file__).parent / "checkpoints" / "grasp_prior"
SCENES_PER_STEP = 16  # training batch: every labelled candidate of this many scenes
CONFIG_NAME = "prior_config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "vla_grasp_prior/1"
CROP_LO = (-0.035, -0.07, -0.08)  # TCP frame, metres: around fingers, gap, palm front and tips
CROP_HI = (0.035, 0.07, 0.03)
POINTS = 64
SCALE = 0.05
GLOBAL = ("geom_score", "width", "topdown", "tcp_height", "log_points", "tcp_x", "tcp_y", "approach_x",
          "approach_y", "closing_cos2", "closing_sin2")
TRAIN_SEED0 = 200000
EVAL_SEED0 = 300000


@dataclass
class PriorNetConfig:
    """Architecture of :class:`GraspPriorNet` (stored in ``prior_config.json``)."""

    points: int = POINTS
    point_dims: tuple[int, ...] = (32, 64)
    head_dims: tuple[int, ...] = (64,)
    n_global: int = len(GLOBAL)
    crop_lo: tuple[float, float, float] = CROP_LO
    crop_hi: tuple[float, float, float] = CROP_HI
    scale: float = SCALE
    meta: dict[str, Any] = field(default_factory=dict)


class GraspPriorNet(nn.Module):
    """PointNet over each candidate's gripper-frame crop + global scalars -> success logit.

    ``forward(points (C, P, 3), glob (C, G)) -> (C,)`` logits.
    """

    def __init__(self, cfg: PriorNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        d = 3
        for h in cfg.point_dims:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.point_mlp = nn.Sequential(*layers)
        head: list[nn.Module] = []
        d = cfg.point_dims[-1] + cfg.n_global
        for h in cfg.head_dims:
            head += [nn.Linear(d, h), nn.ReLU()]
            d = h
        head.append(nn.Linear(d, 1))
        self.head = nn.Sequential(*head)

    def forward(self, points: torch.Tensor, glob: torch.Tensor) -> torch.Tensor:
        """(C, P, 3) crop points + (C, G) scalars -> (C,) logits."""
        f = self.point_mlp(points)  # (C, P, D)
        f = f.max(dim=1).values  # (C, D)
        return self.head(torch.cat([f, glob], dim=-1)).squeeze(-1)  # (C,)


def crop_points(points: np.ndarray, T: np.ndarray, cfg: PriorNetConfig, search=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Cloud points inside each pose's crop box, in that pose's TCP frame.

    Args:
        points: (N, 3) world points (above the support plane).
        T: (C, 4, 4) T_world_tool.
        cfg: crop box.
        search: a ``priors._RadiusSearch`` over ``points`` (built here when None).

    Returns:
        (seg (K,) candidate index, local (K, 3) TCP-frame coordinates), grouped by candidate.
    """
    from vla_policy.priors import _RadiusSearch

    lo, hi = np.asarray(cfg.crop_lo), np.asarray(cfg.crop_hi)
    if search is None:
        search = _RadiusSearch(points)
    R, t = T[:, :3, :3], T[:, :3, 3]
    centre = 0.5 * (lo + hi)
    idx, seg = search(t + R @ centre, float(np.linalg.norm(0.5 * (hi - lo))))
    d = points[idx] - t[seg]  # (K, 3)
    Rs = R.reshape(-1, 9)[seg]  # (K, 9) row-major R per point
    local = np.empty_like(d)  # d @ R: world -> TCP frame
    for a in range(3):
        local[:, a] = d[:, 0] * Rs[:, a] + d[:, 1] * Rs[:, 3 + a] + d[:, 2] * Rs[:, 6 + a]
    inside = np.all((local > lo) & (local < hi), axis=1)
    return seg[inside], local[inside]


def sample_crops(seg: np.ndarray, local: np.ndarray, n_cand: int, n: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points per candidate sampled with replacement -> (pts (C, n, 3), counts (C,)).

    A candidate with an empty crop gets n zero points (its ``log_points`` feature is 0).
    """
    counts = np.bincount(seg, minlength=n_cand)  # (C,)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    pick = (rng.random((n_cand, n)) * counts[:, None]).astype(np.int64)  # (C, n)
    pts = np.zeros((n_cand, n, 3), dtype=np.float32)
    has = counts > 0
    if has.any():
        pts[has] = local[start[has, None] + pick[has]]
    return pts, counts


def global_features(T: np.ndarray, scores: np.ndarray, widths: np.ndarray, counts: np.ndarray,
                    plane: tuple[np.ndarray, float], stroke_m: float = 0.085) -> np.ndarray:
    """(C, G) per-candidate scalars in the order of ``GLOBAL``."""
    n, d = plane
    t = T[:, :3, 3]
    ang = 2.0 * np.arctan2(T[:, 1, 1], T[:, 0, 1])  # closing axis direction, mod 180 deg (symmetry)
    return np.stack([
        scores,
        widths / stroke_m,
        np.clip(-(T[:, :3, 2] @ n), -1, 1),
        (t @ n + d) / 0.1,
        np.log1p(counts) / np.log(1000.0),
        (t[:, 0] - 0.5) / 0.2,
        t[:, 1] / 0.2,
        T[:, 0, 2],
        T[:, 1, 2],
        np.cos(ang),
        np.sin(ang),
    ], 1).astype(np.float32)


def candidate_features(points: np.ndarray, plane: tuple[np.ndarray, float], T: np.ndarray,
                       scores: np.ndarray, widths: np.ndarray, cfg: PriorNetConfig,
                       rng: np.random.Generator | None = None, search=None, n: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs for candidates T (C,4,4): (points (C, n, 3) scaled, glob (C, G))."""
    rng = rng if rng is not None else np.random.default_rng(0)
    seg, local = crop_points(points, T, cfg, search)
    pts, counts = sample_crops(seg, local, len(T), n or cfg.points, rng)
    return pts / np.float32(cfg.scale), global_features(T, scores, widths, counts, plane)


class GraspPrior:
    """A loaded prior: ``score(...)`` -> success logits of grasp candidates."""

    def __init__(self, net: GraspPriorNet, path: Path | None = None) -> None:
        self.net = net.eval()
        self.cfg = net.cfg
        self.path = path

    @classmethod
    def load(cls, path: str | Path = CHECKPOINT) -> GraspPrior:
        """Load ``prior_config.json`` + ``model.safetensors`` from ``path``.

        Raises:
            FileNotFoundError: files missing.
            ValueError: the files are not a grasp-prior checkpoint (format, shapes, corrupt data).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        cfg_file, w_file = path / CONFIG_NAME, path / WEIGHTS_NAME
        if not cfg_file.is_file() or not w_file.is_file():
            raise FileNotFoundError(f"{path} is not a grasp-prior checkpoint (needs {CONFIG_NAME} + "
                                    f"{WEIGHTS_NAME}); train one: `python -m vla_policy.grasp_prior train`")
        try:
            raw = json.loads(cfg_file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{cfg_file} is not valid JSON: {e}") from e
        if raw.get("format") != FORMAT:
            raise ValueError(f"{cfg_file}: format {raw.get('format')!r}, expected {FORMAT!r}")
        try:
            net_raw = dict(raw["net"])
            for k in ("point_dims", "head_dims", "crop_lo", "crop_hi"):
                net_raw[k] = tuple(net_raw[k])
            cfg = PriorNetConfig(**net_raw)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{cfg_file}: malformed network description ({e!r})") from e
        if cfg.n_global != len(GLOBAL):
            raise ValueError(f"{cfg_file}: {cfg.n_global} global features, this code computes {len(GLOBAL)}")
        net = GraspPriorNet(cfg)
        try:
            state = load_file(str(w_file))
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{w_file} is not a readable safetensors file: {e}") from e
        try:
            net.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as e:
            raise ValueError(f"{w_file} does not match the architecture in {cfg_file}: {e}") from e
        return cls(net, path)

    def save(self, path: str | Path) -> Path:
        """Write ``prior_config.json`` + fp32 ``model.safetensors`` into ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().float().contiguous() for k, v in self.net.state_dict().items()},
                  str(path / WEIGHTS_NAME))
        (path / CONFIG_NAME).write_text(json.dumps({"format": FORMAT, "net": asdict(self.cfg)}, indent=1))
        return path

    @torch.no_grad()
    def logits(self, pts: np.ndarray, glob: np.ndarray) -> np.ndarray:
        """(C,) logits from :func:`candidate_features` outputs."""
        if len(pts) == 0:
            return np.zeros(0)
        return self.net(torch.from_numpy(pts), torch.from_numpy(glob)).numpy().astype(np.float64)

    def score(self, points: np.ndarray, plane: tuple[np.ndarray, float], T: np.ndarray,
              scores: np.ndarray, widths: np.ndarray, search=None, seed: int = 0) -> np.ndarray:
        """(C,) success probabilities of candidates T (C,4,4) on a cloud (points above the plane)."""
        pts, glob = candidate_features(points, plane, T, scores, widths, self.cfg,
                                       np.random.default_rng(seed), search)
        return 1.0 / (1.0 + np.exp(-self.logits(pts, glob)))


_CACHE: dict[str, GraspPrior | None] = {}


def shipped_prior(path: str | Path | None = None) -> GraspPrior | None:
    """The prior at ``path`` (default: the shipped one), loaded once.

    Returns None only when the *shipped* checkpoint is absent (the caller then ranks geometrically);
    a given ``path`` that holds no checkpoint, or a broken checkpoint, raises (``GraspPrior.load``)
    instead of silently falling back.
    """
    p = Path(path) if path is not None else CHECKPOINT
    key = str(p.resolve())
    if key not in _CACHE:
        present = (p / CONFIG_NAME).exists() or (p / WEIGHTS_NAME).exists()
        _CACHE[key] = GraspPrior.load(p) if present or path is not None else None
    return _CACHE[key]


# ------------------------------------------------------------------------------------------------
# simulation: labels (training time only) and executed evaluation


def _perceive_geometry(world) -> np.ndarray:
    """Fused cloud xyz (N, 3) of the current scene, as ``vla collect`` renders it (features unused)."""
    from vla_perception.fusion import FusionConfig, fuse_views
    from vla_sim.world import DepthNoise

    frames = world.render(noise=DepthNoise(), seg=False)
    maps = [np.ones((4, 8, 10), np.float32) for _ in frames]  # constant features: geometry only
    return fuse_views(frames, maps, FusionConfig()).xyz.astype(np.float32)


def _aimed_at(world, T: np.ndarray) -> str:
    """Name of the object a grasp is aimed at (training-time labels only).

    The object whose AABB, grown by 1 cm, holds the TCP (nearest AABB centre first); else the
    object with the nearest AABB.
    """
    p = np.asarray(T)[:3, 3]
    best, best_d = "", np.inf
    for name in world.object_ids:
        lo, hi = (np.asarray(a) for a in world.object_aabb(name))
        gap = np.linalg.norm(np.maximum(np.maximum(lo - 0.01 - p, p - hi - 0.01), 0.0))
        d = gap * 10 + np.linalg.norm(0.5 * (lo + hi) - p)  # containment first, then centre distance
        if d < best_d:
            best, best_d = name, d
    return best


def _try_grasp(world, state_id: int, T: np.ndarray) -> tuple[int, int, str]:
    """Execute grasp T from the saved state and restore it after.

    Returns (lifted anything 0/1, lifted the object it was aimed at 0/1, reason).
    """
    import pybullet as pb

    from vla_sim import checks, primitives

    pb.restoreState(state_id, physicsClientId=world.cid)
    world.robot.reset(world.robot.model.home, gripper_open=True)
    aim = _aimed_at(world, T)
    z0 = checks.object_heights(world)
    motion = primitives.execute_grasp(world, np.asarray(T, dtype=np.float64))
    if not motion.ok:
        res = (0, 0, motion.reason)
    else:
        chk = checks.check_grasp(world, (aim,), z0, motion.held)
        why = "aimed" if chk.success else ("other" if chk.lifted else "not_lifted")
        res = (int(bool(chk.lifted)), int(chk.success), why)
    pb.restoreState(state_id, physicsClientId=world.cid)
    world.robot.reset(world.robot.model.home, gripper_open=True)
    return res


def _scene_setup(world, seed: int):
    """Load the seen-split grasp scene ``seed``; (cloud xyz, GraspSet, saved state id)."""
    import pybullet as pb

    from vla_policy.priors import PriorConfig, grasp_set
    from vla_sim.scenes import make_scene

    world.load_scene(make_scene("grasp", "seen", seed))
    xyz = _perceive_geometry(world)
    gs = grasp_set(xyz, PriorConfig(learned_prior=None))
    return xyz, gs, pb.saveState(physicsClientId=world.cid)


def collect(out: Path, seeds: range, per_scene: int = 16, budget_s: float | None = None) -> dict[str, Any]:
    """Label executed grasps on seeded scenes; one ``<seed>.npz`` per scene under ``out`` (resumable)."""
    import pybullet as pb

    from vla_sim.world import SimWorld

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_exec = n_pos = 0
    done = 0
    with SimWorld(robot="ur5", seed=7, render_size=(320, 240)) as world:
        for seed in seeds:
            if budget_s is not None and time.perf_counter() - t0 > budget_s:
                logger.info("budget reached")
                break
            f = out / f"{seed}.npz"
            if f.exists():
                continue
            ts = time.perf_counter()
            xyz, gs, sid = _scene_setup(world, seed)
            rng = np.random.default_rng([seed, 11])
            c = len(gs)
            if c == 0:
                none = np.zeros(0, int)
                np.savez_compressed(f, xyz=xyz, poses=np.zeros((0, 4, 4)), scores=np.zeros(0),
                                    widths=np.zeros(0), executed=none, lifted_any=none, lifted=none,
                                    reason=np.array([], dtype="<U16"))
                continue
            rest = rng.permutation(np.arange(1, c))[: max(0, per_scene - 1)]
            executed = np.r_[0, rest].astype(int)  # the geometric top-1 + random others
            res = [_try_grasp(world, sid, gs.poses[i]) for i in executed]
            pb.removeState(sid, physicsClientId=world.cid)
            labels = [r[1] for r in res]
            np.savez_compressed(f, xyz=xyz, poses=gs.poses, scores=gs.scores, widths=gs.widths,
                                executed=executed, lifted_any=np.array([r[0] for r in res], int),
                                lifted=np.array(labels, int),
                                reason=np.array([r[2] for r in res], dtype="<U16"))
            n_exec += len(executed)
            n_pos += int(np.sum(labels))
            done += 1
            logger.info("seed %d: %d candidates, %d executed, %d lifted (%.1f s); total %d scenes %d "
                        "grasps %.2f positive, %.0f s", seed, c, len(executed), int(np.sum(labels)),
                        time.perf_counter() - ts, done, n_exec, n_pos / max(n_exec, 1),
                        time.perf_counter() - t0)
    info = {"scenes": done, "executed": n_exec, "positive": n_pos, "wall_s": time.perf_counter() - t0}
    logger.info("collect done: %s", info)
    return info


def _scene_plane(xyz: np.ndarray) -> tuple[tuple[np.ndarray, float], np.ndarray]:
    """(plane, points above it) as ``priors._Scene`` sees them (collision cloud)."""
    from vla_policy.priors import support_plane

    xyz = np.asarray(xyz, dtype=np.float64)
    xyz = xyz[np.isfinite(xyz).all(1)]
    n, d = support_plane(xyz)
    return (n, d), xyz[(xyz @ n + d) > 0.003]


def load_labelled(data: Path, cfg: PriorNetConfig, crop_points_n: int = 256
                  ) -> list[dict[str, np.ndarray]]:
    """Per scene: crops of every executed candidate (``crop_points_n`` sampled points) + labels."""
    out = []
    for f in sorted(Path(data).glob("*.npz")):
        z = np.load(f, allow_pickle=False)
        ex = z["executed"]
        if len(ex) == 0:
            continue
        plane, pts = _scene_plane(z["xyz"])
        T = z["poses"][ex]
        rng = np.random.default_rng(int(f.stem) if f.stem.isdigit() else 0)
        seg, local = crop_points(pts, T, cfg)
        crops, counts = sample_crops(seg, local, len(T), crop_points_n, rng)
        glob = global_features(T, z["scores"][ex], z["widths"][ex], counts, plane)
        out.append({"seed": f.stem, "crops": crops / np.float32(cfg.scale), "glob": glob,
                    "y": z["lifted"].astype(np.float32), "reason": z["reason"]})
    return out


def _batch(scenes: list[dict[str, np.ndarray]], rng: np.random.Generator, n: int, augment: bool
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    crops = np.concatenate([s["crops"] for s in scenes])
    glob = np.concatenate([s["glob"] for s in scenes])
    y = np.concatenate([s["y"] for s in scenes])
    if augment:
        pick = rng.integers(0, crops.shape[1], (len(crops), n))
        pts = np.take_along_axis(crops, pick[..., None], 1)
        flip = rng.random(len(pts)) < 0.5  # the parallel gripper's 180-degree symmetry about z
        pts[flip, :, :2] *= -1
    else:
        pts = crops[:, :n]
    return torch.from_numpy(np.ascontiguousarray(pts)), torch.from_numpy(glob), torch.from_numpy(y)


def _ranking_metrics(logits: np.ndarray, scenes: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Top-1 lift rate per scene among its executed candidates (learned, geometric, mean) + ROC AUCs."""
    k = 0
    learned, geom, mean = [], [], []
    for s in scenes:
        m = len(s["y"])
        lg = logits[k:k + m]
        k += m
        learned.append(s["y"][int(np.argmax(lg))])
        geom.append(s["y"][int(np.argmax(s["glob"][:, 0]))])
        mean.append(float(s["y"].mean()))
    y = np.concatenate([s["y"] for s in scenes])
    g = np.concatenate([s["glob"][:, 0] for s in scenes])
    return {"top1_learned": float(np.mean(learned)), "top1_geometric": float(np.mean(geom)),
            "random": float(np.mean(mean)), "auc_learned": auc(logits, y), "auc_geometric": auc(g, y),
            "scenes": len(scenes)}


def train(data: Path, out: Path, epochs: int = 200, lr: float = 2e-3, val_frac: float = 0.2, seed: int = 0
          ) -> dict[str, Any]:
    """Fit the prior on ``collect`` output; write the checkpoint to ``out``; return the metrics."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = PriorNetConfig()
    scenes = load_labelled(data, cfg)
    if len(scenes) < 5:
        raise ValueError(f"only {len(scenes)} labelled scenes under {data}; run `collect` first")
    order = rng.permutation(len(scenes))
    n_val = max(1, int(round(val_frac * len(scenes))))
    val = [scenes[i] for i in order[:n_val]]
    tr = [scenes[i] for i in order[n_val:]]
    net = GraspPriorNet(cfg)
    ytr = np.concatenate([s["y"] for s in tr])
    loss_fn = nn.BCEWithLogitsLoss()  # unweighted: the outputs stay calibrated lift probabilities
    vp, vg, vy = _batch(val, rng, cfg.points, augment=False)
    history: list[dict[str, Any]] = []
    best: tuple[float, dict] | None = None
    per_epoch = -(-len(tr) // SCENES_PER_STEP)  # steps per pass over the training scenes
    run: dict[str, Any] = {"perm": None, "tot": 0.0}

    def step_loss(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        b = step % per_epoch
        if b == 0:  # a new pass
            net.train()
            run["perm"], run["tot"] = rng.permutation(len(tr)), 0.0
        chunk = run["perm"][b * SCENES_PER_STEP:(b + 1) * SCENES_PER_STEP]
        p, g, y = _batch([tr[i] for i in chunk], rng, cfg.points, augment=True)
        loss = loss_fn(net(p, g), y)
        return loss, {"loss_sum": loss.item() * len(y)}

    def on_step(step: int, logs: dict[str, float]) -> None:
        nonlocal best
        run["tot"] += logs["loss_sum"]
        if step % per_epoch:
            return
        net.eval()  # the end of a pass: validation, best state by val BCE
        with torch.no_grad():
            vl = net(vp, vg)
            vloss = float(nn.functional.binary_cross_entropy_with_logits(vl, vy))
        m = _ranking_metrics(vl.numpy(), val)
        row = {"epoch": step // per_epoch - 1, "train_loss": run["tot"] / len(ytr), "val_bce": vloss, **m}
        history.append(row)
        if best is None or vloss < best[0]:
            best = (vloss, {k: v.clone() for k, v in net.state_dict().items()})
        logger.info("%s", json.dumps(row))

    fit(net.parameters(), step_loss, TrainerConfig(steps=epochs * per_epoch, lr=lr, weight_decay=1e-4,
                                                   optimizer="adamw", seed=seed), on_step=on_step)
    assert best is not None
    net.load_state_dict(best[1])
    cfg.meta = {"train_scenes": len(tr), "val_scenes": len(val), "train_grasps": int(len(ytr)),
                "train_positive_rate": float(ytr.mean()), "best_val_bce": best[0],
                "val_at_best": min(history, key=lambda r: r["val_bce"]), "epochs": epochs, "lr": lr,
                "data": str(data)}
    GraspPrior(net).save(out)
    (Path(out) / "history.json").write_text(json.dumps(history))
    return cfg.meta


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (probability that a random positive outranks a random negative)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return None
    diff = pos[:, None] - neg[None]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def evaluate(seeds: range, prior_path: Path = CHECKPOINT, out: Path | None = None, n_random: int = 8,
             thresholds: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)) -> dict[str, Any]:
    """Executed grasps on scenes ``seeds`` (not trained on): learned prior vs geometric score.

    Per scene: the top-1 candidate by the learned prior, the top-1 by the geometric score, and
    ``n_random`` random candidates are executed from the same saved state. The random ones give an
    unbiased view of the whole candidate set: its lift rate (what a uniform pick gets), the ROC AUC
    of either score, and for each pruning threshold the lift rate of the candidates kept and the
    share pruned.
    """
    from vla_sim.world import SimWorld

    prior = GraspPrior.load(prior_path)
    rows = []
    t0 = time.perf_counter()
    with SimWorld(robot="ur5", seed=7, render_size=(320, 240)) as world:
        for seed in seeds:
            xyz, gs, sid = _scene_setup(world, seed)
            if len(gs) == 0:
                rows.append({"seed": seed, "candidates": 0})
                continue
            plane, pts = _scene_plane(xyz)
            p = prior.score(pts, plane, gs.poses, gs.scores, gs.widths)
            rng = np.random.default_rng([seed, 5])
            rand = rng.permutation(len(gs))[:n_random]
            done: dict[int, tuple] = {}
            for i in [int(np.argmax(p)), int(np.argmax(gs.scores)), *rand.tolist()]:
                if i not in done:
                    done[i] = _try_grasp(world, sid, gs.poses[i])
            import pybullet as pb

            pb.removeState(sid, physicsClientId=world.cid)
            row = {"seed": seed, "candidates": len(gs),
                   "learned_index": int(np.argmax(p)), "geometric_index": int(np.argmax(gs.scores)),
                   "learned": done[int(np.argmax(p))][1], "geometric": done[int(np.argmax(gs.scores))][1],
                   "random": [{"index": int(i), "lifted": done[int(i)][1], "reason": done[int(i)][2],
                               "prob": float(p[i]), "geom": float(gs.scores[i])} for i in rand]}
            rows.append(row)
            logger.info("seed %d: learned %d geometric %d random %s (%.0f s)", seed, row["learned"],
                        row["geometric"], [r["lifted"] for r in row["random"]], time.perf_counter() - t0)
    scored = [r for r in rows if r["candidates"] > 0]
    rand_rows = [x for r in scored for x in r["random"]]
    y = np.array([x["lifted"] for x in rand_rows])
    pr = np.array([x["prob"] for x in rand_rows])
    ge = np.array([x["geom"] for x in rand_rows])
    summary: dict[str, Any] = {
        "scenes": len(rows), "scenes_with_candidates": len(scored), "seeds": [seeds.start, seeds.stop],
        "top1_learned": {"lifted": int(sum(r["learned"] for r in scored)), "of": len(scored)},
        "top1_geometric": {"lifted": int(sum(r["geometric"] for r in scored)), "of": len(scored)},
        "same_top1": int(sum(r["learned_index"] == r["geometric_index"] for r in scored)),
        "random": {"lifted": int(y.sum()), "of": int(len(y))},
        "auc_learned": auc(pr, y), "auc_geometric": auc(ge, y),
        "pruning": [{"threshold": t, "kept": int((pr >= t).sum()), "of": int(len(y)),
                     "kept_lifted": int(y[pr >= t].sum()), "pruned_lifted": int(y[pr < t].sum())}
                    for t in thresholds],
        "wall_s": time.perf_counter() - t0,
    }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_policy.grasp_prior collect|train|evaluate`` (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m vla_policy.grasp_prior",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="label executed grasps in simulation (training time only)")
    c.add_argument("--out", default="data/prior/scenes")
    c.add_argument("--seed", type=int, default=TRAIN_SEED0)
    c.add_argument("--scenes", type=int, default=200)
    c.add_argument("--per-scene", type=int, default=16)
    c.add_argument("--budget-s", type=float, default=None, help="stop starting new scenes after this")
    t = sub.add_parser("train", help="fit the prior and write the checkpoint")
    t.add_argument("--data", default="data/prior/scenes")
    t.add_argument("--out", default=str(CHECKPOINT))
    t.add_argument("--epochs", type=int, default=200)
    t.add_argument("--lr", type=float, default=2e-3)
    e = sub.add_parser("evaluate", help="executed top-1 lift rate: learned vs geometric vs random")
    e.add_argument("--seed", type=int, default=EVAL_SEED0)
    e.add_argument("--scenes", type=int, default=40)
    e.add_argument("--random", type=int, default=8, help="random candidates executed per scene")
    e.add_argument("--prior", default=str(CHECKPOINT))
    e.add_argument("--out", default=None, help="JSON file for the per-scene rows")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    if args.cmd == "collect":
        seeds = range(args.seed, args.seed + args.scenes)
        if seeds.stop > 900000 or (seeds.start <= 1019 and seeds.stop > 1000):
            ap.error("collect seeds must avoid the held-out 900000+ and the benchmark cases 1000-1019")
        info = collect(Path(args.out), seeds, args.per_scene, args.budget_s)
    elif args.cmd == "train":
        info = train(Path(args.data), Path(args.out), args.epochs, args.lr)
    else:
        info = evaluate(range(args.seed, args.seed + args.scenes), Path(args.prior),
                        Path(args.out) if args.out else None, args.random)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
