# SPDX-License-Identifier: Apache-2.0
"""The learned policy plugs into ``vla eval`` and proposes grasps from rendered frames only."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_learned_policy_runs_one_benchmark_episode():
    from vla_policy.sim_adapter import make_sr
    from vla_sim.evaluation import Policy, run_episode
    from vla_sim.scenes import make_case
    from vla_sim.world import SimWorld

    policy = make_sr()
    assert isinstance(policy, Policy) and not policy.privileged
    with SimWorld(robot="ur5", render_size=(320, 240)) as world:
        scene = make_case(world, "grasp", "seen", 3)
        res = run_episode(world, scene, policy, max_attempts=2)
    assert 1 <= res.steps <= 2
    d = policy.last_decision
    assert d is not None and d.kind == "grasp"
    if d.pose is not None:  # a proposed grasp is a rigid transform above the table, in the workspace
        R = d.pose[:3, :3]
        assert np.allclose(R.T @ R, np.eye(3), atol=1e-5)
        assert 0.2 < d.pose[0, 3] < 0.8 and abs(d.pose[1, 3]) < 0.45 and -0.01 < d.pose[2, 3] < 0.3


def test_every_shipped_variant_has_a_factory_and_env_checkpoint(monkeypatch):
    from vla_policy import sim_adapter
    from vla_policy.configuration import VARIANTS

    made = {}
    monkeypatch.setattr(sim_adapter, "LearnedSimPolicy", lambda ckpt: made.setdefault(ckpt, ckpt))
    for name in ("make_base", "make_sr_a", "make_sr", "make_sr_posa", "make_sr_mgfa", "make_sr_relu"):
        getattr(sim_adapter, name)()
    assert set(made) == set(VARIANTS)
    monkeypatch.delenv(sim_adapter.CHECKPOINT_ENV, raising=False)
    with pytest.raises(ValueError, match=sim_adapter.CHECKPOINT_ENV):
        sim_adapter.make_checkpoint()
    monkeypatch.setenv(sim_adapter.CHECKPOINT_ENV, "runs/x/best")
    assert sim_adapter.make_checkpoint() == "runs/x/best"
