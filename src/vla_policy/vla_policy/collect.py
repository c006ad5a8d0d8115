# SPDX-License-Identifier: Apache-2.0
"""``vla collect``: expert demonstrations on fused feature clouds, one sample per decision step.

Usage::

    vla collect --task grasp --episodes 300 --workers 2 --out data/grasp
    vla collect --task place --episodes 200 --workers 2 --key-steps --out data/place

Per episode (seed = ``--seed`` + episode index, scene ``vla_sim.scenes.make_scene(task, "seen",
seed)`` in a PyBullet world with the UR5 at home, so the robot is in view as at test time):

1. render the three cameras (``top``, ``left``, ``right``, 320x240, L515-like depth noise);
2. perception as at test time: CLIP dense features (``--clip``, default the compact model) fused
   into a ``FeatureCloud`` with ``vla_perception.fusion.fuse_views``;
3. candidates from the priors on that cloud (``priors.grasp_set`` / ``place_candidates``);
4. expert label: the simulator's scripted expert (``vla_sim.expert.ExpertPolicy``, privileged:
   object poses and shapes) gives its grasp (or release) pose; the label is the prior candidate
   closest to it (grasp: position + 1 mm per degree, dropped beyond 3 cm; place: the candidate
   inside the instruction's region closest in the table plane). ``target_pose`` stores the
   expert's own pose (the PosA anchor);
5. grasp episodes continue: the object the expert grasped is removed (the target, or the blocker
   the expert chose to clear first, as in the paper's clutter protocol), and the next decision uses
   the same instruction while its target remains, else a new one, up to ``--steps-per-episode``.

``--key-steps`` (000's few-shot collection of key steps) keeps only decisive steps: the first
decision of each episode, and only when a candidate matches the expert within 2 cm and 15 deg -
fewer, cleaner samples.

Samples are written as compressed shards (format: ``vla_policy.data``); the run is resumable
(episodes already in complete shards are skipped); ``--workers`` processes collect disjoint
episodes; a progress bar counts episodes. No simulator state reaches the model: the stored inputs
are the cloud, its features, the candidates and the instruction text; object names are training
metadata only (negative instructions for the presence calibration; ``object_aabbs``, each object's
world AABB at decision time, lets evaluation check whether a chosen grasp lies on the target).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_policy.data import ShardWriter, label_candidate, load_samples, select_points, shard_index
from vla_policy.priors import PriorConfig, grasp_set, place_candidates

logger = logging.getLogger(__name__)
STORE_POINTS = 1536
RENDER_SIZE = (320, 240)
MAX_LABEL_DIST_M = 0.03  # a grasp step is dropped when no candidate is this close to the expert's grasp
KEY_DIST_M = 0.02  # --key-steps: the labelled candidate must match the expert within 2 cm ...
KEY_ANGLE_DEG = 15.0  # ... and 15 degrees


def _label_grasp(cands: np.ndarray, T_exp: np.ndarray) -> tuple[int, float, float] | None:
    """Candidate closest to the expert grasp (position + 1 mm per degree): (index, dist m, angle deg)."""
    if len(cands) == 0:
        return None
    i, d, a = label_candidate(cands, np.asarray(T_exp, dtype=np.float64))
    if d > MAX_LABEL_DIST_M:
        return None
    return i, d, a


def _label_place(cands: np.ndarray, T_exp: np.ndarray, region, half_height: float
                 ) -> tuple[int, float, float] | None:
    """Place candidate in the instruction's region closest (xy) to the expert's release point."""
    if len(cands) == 0:
        return None
    surf = cands[:, 2, 3] - PriorConfig().place_height_m
    valid = np.array([region.contains(np.r_[t[:2, 3], s + half_height], s) for t, s in zip(cands, surf)])
    if not valid.any():
        return None
    d = np.linalg.norm(cands[:, :2, 3] - np.asarray(T_exp)[None, :2, 3], axis=1)
    i = int(np.argmin(np.where(valid, d, np.inf)))
    return i, float(d[i]), 0.0


def _perceive(world, clip, fusion_cfg, noise):
    from vla_perception.fusion import fuse_views

    frames = world.render(noise=noise, seg=False)
    maps = clip.dense(np.stack([f.rgb for f in frames]))
    cloud = fuse_views(frames, list(maps), fusion_cfg)
    return frames, cloud


def _sample_arrays(cloud, text: np.ndarray, cands: np.ndarray, label: int, rng, frames=None
                   ) -> dict[str, np.ndarray]:
    idx = select_points(cloud.xyz, STORE_POINTS, rng)
    out = {"xyz": cloud.xyz[idx].astype(np.float32), "rgb": cloud.rgb[idx].astype(np.uint8),
           "features": cloud.features[idx].astype(np.float16), "text": text.astype(np.float16),
           "candidates": cands.astype(np.float32), "label": np.int64(label),
           "target_pose": cands[label].astype(np.float32)}
    if frames is not None:
        out["views_rgb"] = np.stack([f.rgb for f in frames])
        out["views_depth"] = np.stack([f.depth for f in frames]).astype(np.float16)
        out["views_intr"] = np.array([[f.intrinsics.width, f.intrinsics.height, f.intrinsics.fx,
                                       f.intrinsics.fy, f.intrinsics.cx, f.intrinsics.cy] for f in frames])
        out["views_T"] = np.stack([f.T_world_cam for f in frames])
    return out


def frames_from_arrays(s: dict[str, np.ndarray], names: list[str]) -> list:
    """Rebuild the RGBDFrames stored with ``--store-views``."""
    from vla_common.camera import CameraIntrinsics, RGBDFrame

    frames = []
    for v, name in enumerate(names):
        w, h, fx, fy, cx, cy = s["views_intr"][v]
        intr = CameraIntrinsics(int(w), int(h), float(fx), float(fy), float(cx), float(cy))
        frames.append(RGBDFrame(name, s["views_rgb"][v], s["views_depth"][v].astype(np.float32), intr,
                                np.asarray(s["views_T"][v], dtype=np.float64), 0.0))
    return frames


def refeature(src: Path, dst: Path, clip: str = "compact") -> dict[str, Any]:
    """Recompute point and text features of every sample in ``src`` with another CLIP into ``dst``.

    The camera frames stored with ``--store-views`` are re-fused; each stored point takes the
    feature of its nearest fused point. Candidates, labels and metadata are copied unchanged.
    """
    from scipy.spatial import cKDTree
    from tqdm import tqdm

    from vla_perception.clip_features import ClipFeatureExtractor
    from vla_perception.fusion import FusionConfig, fuse_views
    from vla_policy.policy import clip_weights_sha256, encode_instruction

    extractor = ClipFeatureExtractor(clip)
    sha = clip_weights_sha256(clip)
    views = ("views_rgb", "views_depth", "views_intr", "views_T")
    samples = load_samples(Path(src), extra=views)
    writer = ShardWriter(Path(dst), worker=0)
    for s in tqdm(samples, desc="refeature"):
        frames = frames_from_arrays(s, s["meta"].get("cameras", ["top", "left", "right"]))
        maps = extractor.dense(np.stack([f.rgb for f in frames]))
        cloud = fuse_views(frames, list(maps), FusionConfig())
        _, nn = cKDTree(cloud.xyz).query(s["xyz"])
        arrays = {k: s[k] for k in ("xyz", "rgb", "candidates", "label", "target_pose")}
        arrays["features"] = cloud.features[nn].astype(np.float16)
        arrays["text"] = encode_instruction(extractor, s["meta"]["instruction"]).astype(np.float16)
        writer.add(arrays, {**s["meta"], "clip": clip, "clip_sha256": sha})
    writer.flush()
    info = {"samples": len(samples), "clip": clip, "clip_sha256": sha, "source": str(src), "out": str(dst)}
    (Path(dst) / "collect.json").write_text(json.dumps(info))
    return info


def run_episode(world, clip, task: str, seed: int, steps: int, key_steps: bool, split: str = "seen",
                store_views: bool = False) -> list[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """All kept samples of one episode (see the module docstring)."""
    from vla_common.language import parse_instruction
    from vla_perception.fusion import FusionConfig
    from vla_policy.policy import encode_instruction
    from vla_sim import objects as objlib
    from vla_sim.expert import ExpertPolicy
    from vla_sim.instructions import Instruction, grasp_instruction, place_instruction
    from vla_sim.scenes import make_scene
    from vla_sim.world import DepthNoise

    rng = np.random.default_rng([seed, 7])
    scene = make_scene(task, split, seed)
    world.load_scene(scene)
    fusion_cfg, noise = FusionConfig(), DepthNoise()
    expert = ExpertPolicy()
    out = []
    instr: Instruction | None = None
    for step in range(steps if task == "grasp" else 1):
        names = list(world.object_ids)
        if task == "grasp":
            if instr is None or instr.target not in names:
                try:
                    instr = grasp_instruction(rng, [n for n in names if n in scene.names], split=split)
                except ValueError:
                    break
            expert.bind(world, instr)
            T_exp = expert.grasp_pose()
        else:
            refs = [n for n in names if n != scene.held]
            ref = refs[int(rng.integers(len(refs)))]
            instr = place_instruction(rng, scene.held, ref, world.object_aabb(ref))
            expert.bind(world, instr)
            T_exp = expert.place_pose()
        if T_exp is None:
            break
        frames, cloud = _perceive(world, clip, fusion_cfg, noise)
        if task == "grasp":
            cands = grasp_set(cloud.xyz).poses
            lab = _label_grasp(cands, T_exp)
        else:
            cands = place_candidates(cloud.xyz)
            half = 0.5 * float(objlib.get(scene.held).size_m[2])
            lab = _label_place(cands, T_exp, instr.region, half)
        decisive = step == 0 and lab is not None and lab[1] <= KEY_DIST_M and lab[2] <= KEY_ANGLE_DEG
        if lab is not None and (decisive or not key_steps):
            # the text tower reads the canonical stage wording, exactly as Policy.decide does
            stage = dict(parse_instruction(instr.text).stages())[task]
            text = encode_instruction(clip, stage)
            arrays = _sample_arrays(cloud, text, cands, lab[0], rng, frames if store_views else None)
            arrays["target_pose"] = np.asarray(T_exp, dtype=np.float32)
            meta = {"instruction": instr.text, "task": task, "episode": seed, "step": step,
                    "target": instr.target if task == "grasp" else instr.region.reference,
                    "scene_objects": names, "n_candidates": int(len(cands)), "label_dist_m": lab[1],
                    "label_angle_deg": lab[2], "points": int(len(cloud.xyz)),
                    "cameras": [f.name for f in frames],
                    "object_aabbs": {n: [np.round(a, 4).tolist() for a in world.object_aabb(n)]
                                     for n in names}}
            out.append((arrays, meta))
        if task == "grasp":  # the expert's grasp takes its object out of the scene
            obj_names = list(world.object_ids)
            dists = [np.linalg.norm(world.object_pose(n)[:3, 3] - T_exp[:3, 3]) for n in obj_names]
            grasped = obj_names[int(np.argmin(dists))]
            world.remove_object(grasped)
            world.step(120)
    return out


def _worker(k: int, args: dict[str, Any], todo: list[int], q) -> None:
    import torch

    torch.set_num_threads(1)
    from vla_perception.clip_features import ClipFeatureExtractor

    def _stop(signum, frame):  # SIGTERM: write what was collected, then exit
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    clip = ClipFeatureExtractor(args["clip"])
    writer = ShardWriter(Path(args["out"]), worker=k)
    try:
        _collect_loop(k, args, todo, q, clip, writer)
    finally:
        writer.flush()
        q.put(("exit", k))


def _collect_loop(k, args, todo, q, clip, writer) -> None:
    from vla_sim.world import SimWorld

    with SimWorld(robot="ur5", seed=k, render_size=RENDER_SIZE) as world:
        for seed in todo:
            try:
                samples = run_episode(world, clip, args["task"], seed, args["steps"], args["key_steps"],
                                      store_views=args["store_views"])
                for arrays, meta in samples:
                    writer.add(arrays, meta)
                q.put(("done", seed))
            except Exception as exc:  # noqa: BLE001 - one bad episode must not stop the worker
                q.put(("error", f"episode {seed}: {type(exc).__name__}: {exc}"))


def collect(task: str, episodes: int, workers: int, out: Path, seed: int = 0, steps: int = 3,
            key_steps: bool = False, clip: str = "compact", store_views: bool = False) -> dict[str, Any]:
    """Collect ``episodes`` episodes with ``workers`` processes; returns counts."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from vla_policy.policy import clip_weights_sha256

    (out / "collect.json").write_text(json.dumps({"task": task, "episodes": episodes, "seed": seed,
                                                  "steps": steps, "key_steps": key_steps, "clip": clip,
                                                  "clip_sha256": clip_weights_sha256(clip)}))
    done = {m.get("episode") for _, _, m in shard_index(out) if m.get("task") == task}
    todo = [seed + e for e in range(episodes) if seed + e not in done]
    args = {"task": task, "out": str(out), "steps": steps, "key_steps": key_steps, "clip": clip,
            "store_views": store_views}
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(k, args, todo[k::workers], q)) for k in range(workers)]
    for p in procs:
        p.start()
    errors: list[str] = []
    alive = len(procs)
    t0 = time.perf_counter()
    with tqdm(total=episodes, initial=episodes - len(todo), desc=f"collect {task}") as bar:
        while alive:
            kind, val = q.get()
            if kind == "done":
                bar.update(1)
            elif kind == "error":
                errors.append(val)
                bar.update(1)
                logger.warning(val)
            else:
                alive -= 1
    for p in procs:
        p.join()
    n = len([1 for _, _, m in shard_index(out) if m.get("task") == task])
    summary = {"samples": n, "episodes": episodes, "errors": errors[:20], "n_errors": len(errors),
               "wall_s": time.perf_counter() - t0}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla collect``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="vla collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=("grasp", "place"))
    p.add_argument("--episodes", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0, help="episode seeds are seed .. seed + episodes - 1")
    p.add_argument("--steps-per-episode", type=int, default=3, help="grasp decisions per scene")
    p.add_argument("--key-steps", action="store_true", help="keep only the decisive steps (000)")
    p.add_argument("--clip", default="compact", help="CLIP for the features: compact, a directory, or a name")
    p.add_argument("--store-views", action="store_true",
                   help="also store the camera frames (for --refeature)")
    p.add_argument("--refeature", metavar="SRC",
                   help="recompute the features of the shards in SRC with --clip into --out "
                   "(needs shards collected with --store-views)")
    a = p.parse_args(argv)
    if a.refeature:
        print(json.dumps(refeature(Path(a.refeature), Path(a.out), a.clip), indent=2))
        return 0
    if a.task is None or a.episodes < 1 or a.workers < 1:
        p.error("collecting needs --task and --episodes >= 1 (and --workers >= 1)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(json.dumps(collect(a.task, a.episodes, a.workers, Path(a.out), a.seed, a.steps_per_episode,
                             a.key_steps, a.clip, a.store_views), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
