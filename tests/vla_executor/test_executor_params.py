# SPDX-License-Identifier: Apache-2.0
"""Executor parameters are validated when set at run time (add_on_set_parameters_callback), not only
at start: a bad value or a read-only parameter is refused with a reason and changes nothing; a good
value is used from then on."""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402


def test_executor_parameters_are_validated_on_set():
    from vla_executor.executor_node import ExecutorNode

    rclpy.init()
    node = None
    try:
        node = ExecutorNode()
        bad = node.set_parameters([Parameter("speed_scale", value=2.0)])[0]
        assert not bad.successful and "speed_scale" in bad.reason
        assert node.core.backend.cfg.speed_scale == pytest.approx(0.5)
        ro = node.set_parameters([Parameter("robot", value="humanoid_arm")])[0]
        assert not ro.successful and "read-only" in ro.reason
        assert node.get_parameter("robot").value == "ur5"
        # refused as a whole: one bad value keeps the good one from applying too
        both = node.set_parameters_atomically([Parameter("trajectory_stride", value=3),
                                               Parameter("goal_timeout_s", value=-1.0)])
        assert not both.successful and node.traj_stride == 1
        ok = node.set_parameters([Parameter("speed_scale", value=0.25),
                                  Parameter("trajectory_stride", value=2)])
        assert all(r.successful for r in ok)
        assert node.core.backend.cfg.speed_scale == pytest.approx(0.25) and node.traj_stride == 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown()


def test_executor_refuses_to_start_with_a_value_that_breaks_its_rule():
    from vla_executor.executor_node import ExecutorNode

    rclpy.init(args=["--ros-args", "-p", "speed_scale:=2.0"])
    try:
        with pytest.raises(ValueError, match="speed_scale"):
            ExecutorNode()
    finally:
        rclpy.shutdown()
