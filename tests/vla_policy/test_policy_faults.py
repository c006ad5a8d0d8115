# SPDX-License-Identifier: Apache-2.0
"""The policy node (a real process) ends a task when its simulated clock stops or a peer dies."""

from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy")
from policy_proc import policy_node_and_client  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from vla_common.qos import EVENT_QOS  # noqa: E402
from vla_common.status import make_status  # noqa: E402


@pytest.mark.ros
def test_task_ends_when_the_clock_stops_or_a_peer_dies(ros_localhost_env):
    """Sim time runs, a task starts and waits for a cloud; /clock stops -> task_failed (clock_stopped)
    within clock_stall_s of wall time, although the sim-time cloud timeout never fires. A second task
    ends at once when the launcher reports that perception exited."""
    with policy_node_and_client("use_sim_time:=true", "clock_stall_s:=2.0", "cloud_timeout_s:=100.0",
                                client_name="clock_test") as (proc, node, ex, events, say):
        status = node.create_publisher(String, "/vla/status", EVENT_QOS)
        clock = node.create_publisher(Clock, "/clock", 10)
        sim = [1.0]

        def spin(seconds, tick_clock=True, until=None):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if tick_clock:
                    sim[0] += 0.05
                    msg = Clock()
                    msg.clock.sec, msg.clock.nanosec = int(sim[0]), int((sim[0] % 1) * 1e9)
                    clock.publish(msg)
                ex.spin_once(timeout_sec=0.05)
                if until is not None and until():
                    return True
            return False

        def started():
            return any(e["event"] == "instruction_received" for e in events)

        for _ in range(120):  # start-up (the checkpoint loads) and discovery
            say.publish(String(data="pick up the red mug"))
            if spin(1.0, until=started):
                break
            assert proc.poll() is None, proc.output()
        assert started(), events

        def ended():
            return [e for e in events if e["event"] in ("task_failed", "task_succeeded")]

        assert not spin(1.0, until=ended)  # the clock runs: the task waits for its cloud
        t0 = time.monotonic()
        assert spin(15.0, tick_clock=False, until=ended), events
        end = ended()[0]
        assert end["event"] == "task_failed" and "clock stopped" in end["detail"], end
        assert time.monotonic() - t0 < 10.0

        n = len(events)
        say.publish(String(data="pick up the red mug"))
        assert spin(10.0, until=lambda: any(e["event"] == "instruction_received" for e in events[n:]))
        status.publish(String(data=make_status("launch", "node_exited", "error", "perception exited",
                                               name="perception", exit="signal SIGKILL", respawn=True)))
        assert spin(10.0, until=lambda: [e for e in events[n:] if e["event"] == "task_failed"])
        end = [e for e in events[n:] if e["event"] == "task_failed"][0]
        assert "perception" in end["detail"] and "died" in end["detail"], end
