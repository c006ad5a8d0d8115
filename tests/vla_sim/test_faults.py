# SPDX-License-Identifier: Apache-2.0
"""The reduced `vla faults` set inside `make test`: bad input against the real multi-process graph.

Sim bridge (cameras off), policy and executor run as separate processes on loopback DDS; bad
instructions (empty, 10 kB, control characters, another language, an unknown object, 200 in one
second), bad poses, joint states with wrong names and malformed feature clouds must each end with
one clear final status, no node may die and no command may leave the joint limits. The full set
(cameras, killed nodes, files) is `make test-faults`.
"""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("pybullet")


@pytest.mark.ros
@pytest.mark.slow
def test_quick_fault_set(tmp_path, ros_localhost_env):
    from vla_sim.faults import run_scenarios

    rows = run_scenarios(None, full=False, out=tmp_path, log=tmp_path / "nodes.log", files=False)
    assert len(rows) >= 15
    bad = [(r.scenario, r.final_status, r.detail) for r in rows if not r.ok]
    assert not bad, bad
    assert sum(r.commands_outside_limits for r in rows) == 0
    assert all(r.final_status != "none" for r in rows)
    assert set(rows[-1].nodes_alive) == {"sim_bridge", "policy", "executor"}, rows[-1]
    assert (tmp_path / "faults.md").is_file() and (tmp_path / "faults.json").is_file()
