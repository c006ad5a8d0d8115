# SPDX-License-Identifier: Apache-2.0
"""A policy node in its own process and an rclpy client node beside it (tests of the policy node)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import rclpy
from std_msgs.msg import String

from vla_common.qos import EVENT_QOS


@contextlib.contextmanager
def policy_node_and_client(*params: str, env: dict[str, str] | None = None,
                           client_name: str = "policy_test_client"):
    """A policy node process (``-p`` params) and a client node: yields (proc, node, executor, events, pub).

    ``events`` collects every ``/vla/status`` event (parsed JSON); ``pub`` publishes on
    ``/vla/instruction``. ``proc.output()`` is the node's log so far. On exit the client is destroyed
    and the process terminated (killed after 10 s).

    The node's stdout is read all the time by a thread: a pipe nobody reads fills up (64 KiB) and
    the node then blocks in its next log call, which a burst of refused instructions reaches (CI
    saw 54 of 200 burst instructions unanswered that way).
    """
    args = [sys.executable, "-m", "vla_policy.policy_node"]
    if params:
        args += ["--ros-args", *[x for p in params for x in ("-p", p)]]
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def drain() -> None:
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc.output = lambda: "".join(lines)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node(client_name, context=ctx)
        ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        events: list[dict] = []
        node.create_subscription(String, "/vla/status", lambda m: events.append(json.loads(m.data)),
                                 EVENT_QOS)
        pub = node.create_publisher(String, "/vla/instruction", EVENT_QOS)
        yield proc, node, ex, events, pub
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def spin_until(proc: subprocess.Popen, ex, cond, timeout_s: float) -> bool:
    """Spin the client's executor until ``cond()`` holds (True) or ``timeout_s`` passed (False).

    The policy node process must stay alive meanwhile (its log is the failure message).
    """
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        ex.spin_once(timeout_sec=0.02)
        assert proc.poll() is None, proc.output()
        if cond():
            return True
    return False
