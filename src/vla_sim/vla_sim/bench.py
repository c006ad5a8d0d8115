# SPDX-License-Identifier: Apache-2.0
"""Simulation throughput benchmark (``vla bench`` calls :func:`run`).

Measures, in one long-lived DIRECT client (the way data collection uses it):

- scene reset + drop + settle of a 15-object grasp scene (and the steps settling took);
- one 3-camera RGB + depth + segmentation render at 640x480 and at 320x240;
- one expert grasp executed in physics (IK, approach, close, lift) and its simulated steps;
- one physics step of a settled scene with the robot.

Wall times are min / median over ``repeats`` scenes (different seeds); the result is written to
``results/bench_sim.json``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_sim.expert import ExpertPolicy
from vla_sim.instructions import Instruction
from vla_sim.primitives import execute_grasp
from vla_sim.scenes import make_case
from vla_sim.world import SimWorld


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max()), "n": int(a.size)}


def run(out_dir: Path, repeats: int = 5, renderer: str = "auto") -> dict[str, Any]:
    """Run the benchmark and write ``out_dir/bench_sim.json``; returns the result dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_load, settle_steps, t_r640, t_r320, t_grasp, grasp_steps, grasp_ok, t_step = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    used_renderer = None
    with (
        SimWorld(robot="ur5", renderer=renderer, render_size=(640, 480)) as world640,
        SimWorld(robot="ur5", renderer=renderer, render_size=(320, 240)) as world320,
    ):
        used_renderer = world640.renderer
        expert = ExpertPolicy()
        for i in range(repeats + 1):  # the first round warms up caches and the renderer
            t0 = time.perf_counter()
            scene = make_case(world640, "grasp", "seen", 500 + i)
            dt_load = time.perf_counter() - t0
            steps = world640.steps
            t0 = time.perf_counter()
            world640.render()
            dt640 = time.perf_counter() - t0
            world320.load_scene(scene)
            t0 = time.perf_counter()
            world320.render()
            dt320 = time.perf_counter() - t0
            t0 = time.perf_counter()
            world640.step(240)
            dt_step = (time.perf_counter() - t0) / 240
            instr = Instruction.from_dict(scene.instruction)
            expert.bind(world640, instr)
            t0 = time.perf_counter()
            T = expert.act([], instr.text, {"phase": "grasp"})
            s0 = world640.steps
            ok = False
            if T is not None:
                z0 = {n: world640.object_pose(n)[2, 3] for n in world640.object_ids}
                res = execute_grasp(world640, T)
                ok = any(
                    n in instr.targets and world640.object_pose(n)[2, 3] - z0[n] >= 0.1 for n in res.held
                )
            dt_grasp = time.perf_counter() - t0
            if i == 0:
                continue
            t_load.append(dt_load)
            settle_steps.append(steps)
            t_r640.append(dt640)
            t_r320.append(dt320)
            t_step.append(dt_step)
            t_grasp.append(dt_grasp)
            grasp_steps.append(world640.steps - s0)
            grasp_ok.append(ok)
    result = {
        "name": "sim",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "renderer": used_renderer,
        "repeats": repeats,
        "scene_reset_settle_s": _stats(t_load),
        "settle_steps": _stats([float(s) for s in settle_steps]),
        "render_3cam_640x480_s": _stats(t_r640),
        "render_3cam_320x240_s": _stats(t_r320),
        "physics_step_s": _stats(t_step),
        "expert_grasp_s": _stats(t_grasp),
        "expert_grasp_sim_steps": _stats([float(s) for s in grasp_steps]),
        "expert_first_grasp_success": float(np.mean(grasp_ok)),
        "episode_estimate_s": {
            "640x480": float(np.median(t_load) + np.median(t_r640) + np.median(t_grasp)),
            "320x240": float(np.median(t_load) + np.median(t_r320) + np.median(t_grasp)),
        },
    }
    (out_dir / "bench_sim.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path("results")), indent=1))
