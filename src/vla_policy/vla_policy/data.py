# SPDX-License-Identifier: Apache-2.0
"""Sample preparation and the on-disk shard format shared by collection, training and the policy.

One sample = one decision step. Shards are compressed ``.npz`` files (``np.savez_compressed``, no
pickles) named ``shard_<worker>_<index>.npz`` with a sibling ``.json`` index; a shard holds up to
``SHARD_SIZE`` samples, and sample ``i`` stores these arrays under the keys ``<i>/<name>``:

| name | shape / dtype | meaning |
|---|---|---|
| ``xyz`` | (P, 3) float32 | cloud points, metres, world frame (object-biased, ``select_points``) |
| ``rgb`` | (P, 3) uint8 | colours |
| ``features`` | (P, D) float16 | fused CLIP features |
| ``text`` | (T, D) float16 | instruction tokens: row 0 = pooled sentence embedding, then the word tokens |
| ``candidates`` | (C, 4, 4) float32 | T_world_tool candidates (priors) |
| ``label`` | () int64 | index of the expert's candidate |
| ``target_pose`` | (4, 4) float32 | the expert's own pose (the PosA anchor) |

Optional (``vla collect --store-views``): ``views_rgb`` (V, H, W, 3) uint8, ``views_depth`` (V, H, W)
float16 metres (NaN = missing), ``views_intr`` (V, 6) [width, height, fx, fy, cx, cy] and
``views_T`` (V, 4, 4) T_world_cam, so features can be recomputed with another CLIP
(``vla collect --refeature``).

The ``.json`` index lists, per sample: ``instruction``, ``task`` (grasp|place), ``episode`` seed,
``step``, ``label_dist_m`` / ``label_angle_deg`` (expert pose vs labelled candidate), ``scene_objects``
and ``target`` (training metadata only: used to build negative instructions when calibrating the
target-not-found threshold; never an input of the model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_policy.model import (
    CAND_MASK,
    CANDIDATES,
    FEATURES,
    LABEL,
    POINT_MASK,
    RGB,
    TARGET_XYZ,
    TEXT,
    TEXT_MASK,
    XYZ,
)

SHARD_SIZE = 32
ARRAYS = ("xyz", "rgb", "features", "text", "candidates", "label", "target_pose")


def select_points(xyz: np.ndarray, n: int, rng: np.random.Generator, object_frac: float = 0.75,
                  min_height_m: float = 0.008) -> np.ndarray:
    """Indices of an object-biased sub-sample of at most ``n`` points.

    Up to ``object_frac * n`` points come from above the support plane (objects), the rest from the
    plane, both uniformly at random; fewer object points leave more room for plane points.
    """
    from vla_policy.priors import support_plane

    if len(xyz) <= n:
        return np.arange(len(xyz))
    nrm, d = support_plane(np.asarray(xyz, dtype=np.float64))
    h = xyz @ nrm + d
    obj = np.flatnonzero(h > min_height_m)
    rest = np.flatnonzero(h <= min_height_m)
    n_obj = min(len(obj), int(round(object_frac * n)))
    n_rest = min(len(rest), n - n_obj)
    n_obj = min(len(obj), n - n_rest)
    idx = np.concatenate([rng.choice(obj, n_obj, replace=False), rng.choice(rest, n_rest, replace=False)])
    return np.sort(idx)


def pose7(T: np.ndarray) -> np.ndarray:
    """(…, 4, 4) -> (…, 7) xyz + quaternion xyzw (w >= 0)."""
    from scipy.spatial.transform import Rotation

    T = np.asarray(T, dtype=np.float64)
    flat = T.reshape(-1, 4, 4)
    q = Rotation.from_matrix(flat[:, :3, :3]).as_quat()  # xyzw
    q = np.where(q[:, 3:4] < 0, -q, q)
    return np.concatenate([flat[:, :3, 3], q], -1).reshape(*T.shape[:-2], 7)


def pose_distance(Ta: np.ndarray, Tb: np.ndarray, symmetric: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m) and rotation angle (deg) between poses (…, 4, 4).

    ``symmetric`` treats a parallel gripper turned 180 deg about its approach axis as the same grasp.
    """
    dpos = np.linalg.norm(Ta[..., :3, 3] - Tb[..., :3, 3], axis=-1)
    R = np.swapaxes(Ta[..., :3, :3], -1, -2) @ Tb[..., :3, :3]
    ang = np.degrees(np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))
    if symmetric:
        flip = np.diag([-1.0, -1.0, 1.0])
        R2 = np.swapaxes(Ta[..., :3, :3] @ flip, -1, -2) @ Tb[..., :3, :3]
        ang2 = np.degrees(np.arccos(np.clip((np.trace(R2, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))
        ang = np.minimum(ang, ang2)
    return dpos, ang


def label_candidate(candidates: np.ndarray, expert: np.ndarray, angle_weight_m_per_deg: float = 0.001
                    ) -> tuple[int, float, float]:
    """Index of the candidate closest to the expert pose: d_pos + 1 mm per degree; (index, dist, angle)."""
    d, a = pose_distance(candidates, expert[None])
    cost = d + angle_weight_m_per_deg * a
    i = int(np.argmin(cost))
    return i, float(d[i]), float(a[i])


class ShardWriter:
    """Accumulates samples and writes ``shard_<worker>_<index>.npz`` + ``.json`` every ``SHARD_SIZE``."""

    def __init__(self, out_dir: Path, worker: int, shard_size: int = SHARD_SIZE) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.shard_size = shard_size
        self.arrays: dict[str, np.ndarray] = {}
        self.meta: list[dict[str, Any]] = []
        existing = sorted(self.out_dir.glob(f"shard_{worker:02d}_*.npz"))
        self.index = len(existing)

    def add(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Queue one sample; flushes when the shard is full."""
        missing = set(ARRAYS) - set(arrays)
        if missing:
            raise ValueError(f"sample is missing arrays {sorted(missing)}")
        i = len(self.meta)
        for k, v in arrays.items():
            self.arrays[f"{i}/{k}"] = np.asarray(v)
        self.meta.append(meta)
        if len(self.meta) >= self.shard_size:
            self.flush()

    def flush(self) -> Path | None:
        """Write the queued samples (npz first, then the json index that marks the shard complete)."""
        if not self.meta:
            return None
        stem = self.out_dir / f"shard_{self.worker:02d}_{self.index:05d}"
        tmp = stem.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **self.arrays)
        tmp.rename(stem.with_suffix(".npz"))
        stem.with_suffix(".json").write_text(json.dumps({"samples": self.meta}, indent=0))
        self.arrays, self.meta = {}, []
        self.index += 1
        return stem.with_suffix(".npz")


def shard_index(data_dir: Path) -> list[tuple[Path, int, dict[str, Any]]]:
    """(npz path, sample index, metadata) for every complete shard under ``data_dir``."""
    out = []
    for js in sorted(Path(data_dir).glob("shard_*.json")):
        npz = js.with_suffix(".npz")
        if not npz.exists():
            continue
        for i, m in enumerate(json.loads(js.read_text())["samples"]):
            out.append((npz, i, m))
    return out


def load_samples(data_dir: Path, task: str | None = None, extra: tuple[str, ...] = ()
                 ) -> list[dict[str, Any]]:
    """All samples as dicts of arrays + ``meta`` (clouds are small: ~1-2k points each).

    ``extra`` names optional arrays to load too (e.g. the ``views_*`` camera frames).
    """
    data_dir = Path(data_dir)
    entries = shard_index(data_dir)
    if not entries:
        raise FileNotFoundError(
            f"no complete shards (shard_*.npz + .json) under {data_dir}; run `vla collect` first"
        )
    samples = []
    cache: dict[Path, Any] = {}
    for npz, i, meta in entries:
        if task is not None and meta.get("task") != task:
            continue
        if npz not in cache:
            cache.clear()
            cache[npz] = np.load(npz, allow_pickle=False)
        z = cache[npz]
        s = {k: z[f"{i}/{k}"] for k in (*ARRAYS, *extra)}
        s["meta"] = meta
        samples.append(s)
    return samples


def collate(samples: list[dict[str, Any]], num_points: int, max_candidates: int,
            rng: np.random.Generator | None = None, text_override: list[np.ndarray] | None = None
            ) -> dict[str, torch.Tensor]:
    """Batch samples into model tensors (padding + masks); random point subset when ``rng`` is given.

    Candidates beyond ``max_candidates`` are dropped, keeping the label (it is swapped into the kept
    range when needed).
    """
    b = len(samples)
    d = samples[0]["features"].shape[1]
    texts = text_override or [s["text"] for s in samples]
    t_max = max(t.shape[0] for t in texts)
    c_max = min(max_candidates, max(s["candidates"].shape[0] for s in samples))
    out = {
        XYZ: torch.zeros(b, num_points, 3),
        FEATURES: torch.zeros(b, num_points, d),
        RGB: torch.zeros(b, num_points, 3),
        POINT_MASK: torch.zeros(b, num_points, dtype=torch.bool),
        TEXT: torch.zeros(b, t_max, d),
        TEXT_MASK: torch.zeros(b, t_max, dtype=torch.bool),
        CANDIDATES: torch.zeros(b, c_max, 7),
        CAND_MASK: torch.zeros(b, c_max, dtype=torch.bool),
        LABEL: torch.zeros(b, dtype=torch.long),
        TARGET_XYZ: torch.zeros(b, 3),
    }
    out[CANDIDATES][..., 6] = 1.0
    for j, s in enumerate(samples):
        xyz = s["xyz"]
        if rng is not None:
            idx = rng.permutation(len(xyz))[:num_points] if len(xyz) > num_points else np.arange(len(xyz))
        else:
            idx = np.arange(min(len(xyz), num_points))
        n = len(idx)
        out[XYZ][j, :n] = torch.from_numpy(xyz[idx].astype(np.float32))
        out[FEATURES][j, :n] = torch.from_numpy(s["features"][idx].astype(np.float32))
        if s.get("rgb") is not None:
            out[RGB][j, :n] = torch.from_numpy(np.asarray(s["rgb"])[idx].astype(np.float32) / 255.0)
        out[POINT_MASK][j, :n] = True
        t = texts[j]
        out[TEXT][j, : len(t)] = torch.from_numpy(np.asarray(t, dtype=np.float32))
        out[TEXT_MASK][j, : len(t)] = True
        cands = s["candidates"]
        label = int(s["label"])
        order = np.arange(len(cands))
        if label >= c_max:
            order[[c_max - 1, label]] = order[[label, c_max - 1]]
            label = c_max - 1
        order = order[:c_max]
        c = len(order)
        out[CANDIDATES][j, :c] = torch.from_numpy(pose7(cands[order]).astype(np.float32))
        out[CAND_MASK][j, :c] = True
        out[LABEL][j] = label
        out[TARGET_XYZ][j] = torch.from_numpy(np.asarray(s["target_pose"], dtype=np.float32)[:3, 3])
    return out
