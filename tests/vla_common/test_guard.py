# SPDX-License-Identifier: Apache-2.0
"""vla_common.guard and the launcher's respawn: a bad message or a dead node never takes the graph down."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from std_msgs.msg import String  # noqa: E402

from vla_common.guard import ParameterError, check_parameter_overrides, guard_callbacks  # noqa: E402
from vla_common.qos import EVENT_QOS  # noqa: E402


@pytest.mark.ros
def test_guarded_callback_reports_and_survives(ros_localhost_env):
    """A callback raising on a message: counted, reported as bad_message; the next message is handled."""
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("guard_test", context=ctx)
        handled = []

        def on_msg(msg):
            handled.append(int(msg.data))  # ValueError on anything but a number

        node.create_subscription(String, "/guard_test/in", on_msg, EVENT_QOS)
        events = []
        node.create_subscription(String, "/vla/status", lambda m: events.append(json.loads(m.data)),
                                 EVENT_QOS)
        guard = guard_callbacks(node)
        sub = next(s for s in node.subscriptions if s.topic_name == "/guard_test/in")
        sub.callback(String(data="not a number"))
        sub.callback(String(data="7"))
        assert handled == [7]
        assert guard.counts["/guard_test/in"] == 1
        late = node.create_subscription(String, "/guard_test/late", on_msg, EVENT_QOS)  # e.g. on_configure
        late.callback(String(data="x"))
        assert guard.counts["/guard_test/late"] == 1
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        end = time.monotonic() + 10
        while time.monotonic() < end and not events:
            ex.spin_once(timeout_sec=0.1)
        assert events and events[0]["event"] == "bad_message" and events[0]["topic"] == "/guard_test/in"
        assert "ValueError" in events[0]["error"] and events[0]["count"] == 1
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_unknown_parameter_refused():
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, args=["--ros-args", "-p", "max_atempts:=3", "-p", "max_attempts:=2"])
    try:
        node = rclpy.create_node("param_test", context=ctx)
        node.declare_parameter("max_attempts", 3)
        with pytest.raises(ParameterError, match="max_atempts"):
            check_parameter_overrides(node)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


@pytest.mark.ros
def test_launcher_respawns_with_a_limit(ros_localhost_env):
    """--respawn 1: a killed node comes back once, the other runs on; the second death stops the graph."""
    from vc_procs import LineReader

    proc = subprocess.Popen([sys.executable, "-m", "vla_common.launcher", "test", "--respawn", "1"],
                            env=dict(ros_localhost_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    out = LineReader(proc)
    try:
        assert out.wait_for(r"heard: hello \d+", 60), out.text()
        pids = {m.group(1): int(m.group(2)) for line in out.lines
                if (m := re.search(r"started '(\w+)' \(pid (\d+)\)", line))}
        os.kill(pids["talker"], signal.SIGKILL)
        assert out.wait_for(r"respawned 'talker' \(pid \d+, restart 1/1\)", 30), out.text()
        new = int(re.search(r"respawned 'talker' \(pid (\d+)", out.text()).group(1))
        assert proc.poll() is None
        os.kill(new, signal.SIGKILL)
        assert proc.wait(timeout=30) == 1, out.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    out.wait_for("FAILED", 5)
    text = out.text()
    assert "restarting it in" in text and "FAILED: node 'talker' died" in text, text
    assert "listener: code 0" in text, text  # the listener ran throughout and stopped cleanly
