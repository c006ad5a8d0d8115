# SPDX-License-Identifier: Apache-2.0
"""``vla eval --record DIR``: one rerun recording (.rrd) per evaluation episode.

:class:`EpisodeRecorder` is the hook ``vla_sim.evaluation.evaluate`` calls around each episode. It
wraps the policy (every ``act`` call is logged: the camera images, the cloud the decision was made
on, the candidates with their scores, the chosen pose) and samples the TCP every 0.1 s of simulated
time while the world steps (the arm's trajectory). The timeline is simulated time. Clouds: a policy
that runs the perception pipeline (``vla_policy.sim_adapter``) is logged with its own fused feature
cloud, coloured also by CLIP relevance to the stage text; other policies (expert, random) with the
RGB points back-projected from the rendered depth. Target boxes come from the scene's ground truth
(for the person; the policy never sees them). Open a file with ``rerun <file>.rrd``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vla_common.recording import EpisodeRecording, backproject

SAMPLE_EVERY_STEPS = 24  # TCP sample every 0.1 s of simulated time (240 Hz physics)


class _RecordingPolicy:
    """The policy, with each decision logged; every other attribute passes through."""

    def __init__(self, policy: Any, recorder: EpisodeRecorder) -> None:
        self._policy = policy
        self._recorder = recorder
        pipeline = getattr(policy, "pipeline", None)
        wrapped = pipeline is not None and "_recorder_wrapped" in vars(pipeline)
        if pipeline is not None and hasattr(pipeline, "process") and not wrapped:
            process = pipeline.process

            def capture(frames: Any, *a: Any, **kw: Any) -> Any:
                cloud = process(frames, *a, **kw)
                pipeline._recorder_last_cloud = cloud
                return cloud

            pipeline.process = capture
            pipeline._recorder_wrapped = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def act(self, frames: list, instruction_text: str, robot_state: dict[str, Any]) -> np.ndarray | None:
        pose = self._policy.act(frames, instruction_text, robot_state)
        self._recorder.decision(self._policy, frames, instruction_text, robot_state, pose)
        return pose


class EpisodeRecorder:
    """Records one episode of ``vla eval`` into ``out_dir/episode_<i>_<task>_<split>_<seed>.rrd``."""

    def __init__(self, out_dir: Path, index: int, scene: Any, world: Any) -> None:
        self.path = Path(out_dir) / f"episode_{index:03d}_{scene.task}_{scene.split}_{scene.seed}.rrd"
        self.rec = EpisodeRecording(self.path, name="vla_eval")
        self.world = world
        self.scene = scene
        self.tcp: list[np.ndarray] = []
        self._since = 0
        self._step = world.step
        world.step = self._stepping  # instance attribute: every motion of the episode passes here
        self.rec.time(0.0)
        instr = scene.instruction or {}
        self.rec.event(f"episode {index}: {scene.task}/{scene.split} seed {scene.seed}: "
                       f"{instr.get('text')!r}")

    def _stepping(self, n: int = 1) -> None:
        for _ in range(int(n)):
            self._step(1)
            self._since += 1
            if self._since >= SAMPLE_EVERY_STEPS and getattr(self.world, "robot", None) is not None:
                self._since = 0
                self.tcp.append(self.world.robot.tcp_pose()[:3, 3].copy())
                self.rec.time(self.world.sim_time_s)
                self.rec.trajectory(np.asarray(self.tcp), path=len(self.tcp) % 5 == 1)

    def policy(self, policy: Any) -> _RecordingPolicy:
        """The policy wrapped so that each decision is logged."""
        return _RecordingPolicy(policy, self)

    def decision(self, policy: Any, frames: list, text: str, state: dict[str, Any],
                 pose: np.ndarray | None) -> None:
        """Log one decision: images, cloud, candidates and scores, the chosen pose."""
        from vla_common.recording import Camera

        w = self.world
        self.rec.time(w.sim_time_s)
        if not self.tcp:  # targets once the scene is loaded (ground truth, for the person)
            instr = self.scene.instruction or {}
            names = [n for n in instr.get("targets") or [instr.get("target")] if n in w.object_ids]
            self.rec.targets({n: w.object_aabb(n) for n in names})
        shown = frames or w.render(None, seg=False)
        for f in shown:
            K = f.intrinsics
            cam = Camera(f.name, np.array([[K.fx, 0, K.cx], [0, K.fy, K.cy], [0, 0, 1.0]]), f.T_world_cam,
                         K.width, K.height)
            self.rec.image(cam, f.name, f.rgb)
        phase = str(state.get("phase", "grasp"))
        decision = getattr(policy, "last_decision", None)
        cloud = getattr(getattr(policy, "pipeline", None), "_recorder_last_cloud", None)
        if cloud is not None:
            stage = getattr(decision, "text", "") or text
            self.rec.cloud(cloud.xyz, cloud.rgb, _relevance(policy, cloud, stage))
        else:
            pts = [backproject(f) for f in shown]
            self.rec.cloud(np.concatenate([p[0] for p in pts]), np.concatenate([p[1] for p in pts]))
        idx = None
        if decision is not None and len(getattr(decision, "candidates", [])):
            idx = int(decision.index) if int(decision.index) >= 0 else None
            self.rec.candidates(decision.candidates, decision.scores, idx, kind=phase)  # logs the chosen one
        if pose is not None and idx is None:
            self.rec.chosen(pose, phase)
        self.rec.event(f"{phase} decision: {'pose chosen' if pose is not None else 'nothing proposed'}")

    def finish(self, result: Any) -> Path:
        """Log the episode's outcome, restore the world's step and close the file."""
        self.rec.time(self.world.sim_time_s)
        if self.tcp:
            self.rec.trajectory(np.asarray(self.tcp))
        for note in getattr(result, "notes", []):
            self.rec.event(note, "warn")
        ok = bool(getattr(result, "success", False))
        g, p = getattr(result, "grasp_success", None), getattr(result, "place_success", None)
        self.rec.event(f"episode {'succeeded' if ok else 'failed'} after {getattr(result, 'steps', 0)} steps "
                       f"(grasp {g}, place {p})", "info" if ok else "error")
        if "step" in vars(self.world):
            del self.world.step  # back to the class's method
        self.rec.close()
        return self.path


def _relevance(policy: Any, cloud: Any, text: str) -> np.ndarray | None:
    """(N,) CLIP cosine similarity of the cloud's features to ``text`` (None when no CLIP is at hand)."""
    clip = getattr(getattr(policy, "pipeline", None), "clip", None)
    feats = getattr(cloud, "features", None)
    if clip is None or feats is None or not text:
        return None
    import torch

    with torch.inference_mode():
        t = clip.text([text]).cpu().numpy()[0]  # (D,)
    f = np.asarray(feats, dtype=np.float32)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)
    return f @ t if f.shape[1] == t.shape[0] else None
