# SPDX-License-Identifier: Apache-2.0
"""Perception benchmark: milliseconds per fused 3 x 640x480 frame, split by stage.

Scenes come from ``vla_sim.world.SimWorld`` (the benchmark rig, catalogue objects on the table;
rendered once, outside the timing). Two CLIP image towers are timed through the same
:class:`PerceptionPipeline`: the shipped compact model and the ViT-B-32 architecture with random
weights (``pretrained=None``; the timing does not depend on the weights). Stages: ``clip`` (image
tower on the 3 views), ``downsampling`` (open3d voxel grid), ``projection_fusion``
(back-projection, crop, projection into every view, confidence, bilinear sampling, weighted mean),
``wait_geometry`` (how long the overlapped geometry outlasted CLIP) and ``total`` (wall time per
fused frame: with the default overlap the stages do not add up to it).
Writes ``results/bench_perception.json``; the goal is <= 50 ms per fused frame with the compact
model on the 2-core development machine.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


def _scene_frames(seed: int = 0) -> list:
    from vla_sim.objects import by_split
    from vla_sim.world import WORKSPACE_X, WORKSPACE_Y, SimWorld

    rng = np.random.default_rng(seed)
    with SimWorld(robot=None, renderer="tiny", seed=seed) as world:  # EGL teardown + torch crashed
        specs = [s for s in by_split("seen") if s.grasp_target]
        for k, i in enumerate(rng.choice(len(specs), 8, replace=False)):
            s = specs[int(i)]
            xy = [WORKSPACE_X[0] + 0.05 + 0.12 * (k % 4), WORKSPACE_Y[0] + 0.15 + 0.3 * (k // 4)]
            world.add_object(s, [xy[0], xy[1], s.size_m[2] / 2], [0, 0, 0, 1], rest_on_table=True)
        return world.render()


def _time(pipe, frames, repeats: int) -> dict:
    pipe.process(frames)  # warm-up
    rows, pts = [], []
    for _ in range(repeats):
        cloud = pipe.process(frames)
        rows.append(dict(pipe.last_timings_ms))
        pts.append(len(cloud))
    keys = rows[0].keys()
    return {"ms_median": {k: float(np.median([r[k] for r in rows])) for k in keys},
            "ms_min": {k: float(np.min([r[k] for r in rows])) for k in keys},
            "points_out": int(np.median(pts)), "feature_dim": int(cloud.features.shape[1]),
            "repeats": repeats}


def run(out_dir: Path, repeats: int = 15) -> dict:
    """Time the pipeline with both towers; write ``out_dir/bench_perception.json``.

    Each tower runs in the default configuration (``threads: 0`` = automatic, geometry overlapped
    with CLIP on a worker thread); the compact tower also runs sequentially on all cores and on one
    core, for comparison with earlier numbers.
    """
    from vla_perception.pipeline import PerceptionConfig, PerceptionPipeline, auto_threads

    frames = _scene_frames()
    result = {"frames": [f"{f.name} {f.rgb.shape[1]}x{f.rgb.shape[0]}" for f in frames],
              "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
              "torch": torch.__version__, "goal_ms_compact_total": 50.0,
              "load_avg_1min_before": os.getloadavg()[0], "models": {}}
    cores = auto_threads(False)
    runs = [("compact", dict(clip_model="compact")),
            (f"compact, sequential, {cores} threads", dict(clip_model="compact", overlap_geometry=False,
                                                           threads=cores)),
            ("compact, sequential, 1 thread", dict(clip_model="compact", overlap_geometry=False, threads=1)),
            ("ViT-B-32 (random init)", dict(clip_model="ViT-B-32", clip_pretrained=None))]
    for name, kw in runs:
        t0 = time.perf_counter()
        pipe = PerceptionPipeline(PerceptionConfig(**kw))
        r = _time(pipe, frames, repeats)
        pipe.close()
        r["load_s"] = time.perf_counter() - t0
        r["grid"] = list(pipe.clip.grid_size)
        r["threads"] = torch.get_num_threads()
        r["overlap_geometry"] = pipe.cfg.overlap_geometry
        result["models"][name] = r
    result["load_avg_1min_after"] = os.getloadavg()[0]  # other processes on the machine distort timings
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_perception.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path("results")), indent=1))
