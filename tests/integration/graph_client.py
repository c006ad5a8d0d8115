# SPDX-License-Identifier: Apache-2.0
"""The outside rclpy process of the graph tests: a /vla/manipulate action client that also watches.

Shared by the integration tests that drive the real sim graph (``vla_common.graph.graph("sim")``
started by ``vla_common.launcher.Launcher``) from a separate process, as any user's client would:
it sends goals, collects their feedback, and records ``/vla/status`` events, ``/clock`` and the arm's
joint velocities from ``/joint_states``. Import it after ``pytest.importorskip("rclpy")``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import rclpy
from rclpy.action import ActionClient
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from vla_common import topics
from vla_common.graph import graph
from vla_common.launcher import Launcher
from vla_common.qos import EVENT_QOS, RELIABLE_QOS, SENSOR_QOS
from vla_interfaces.action import Manipulate

ARM = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
       "wrist_3_joint"]


class Client:
    """The outside process: action client + watchers."""

    def __init__(self, ctx: Any) -> None:
        self.node = rclpy.create_node("manipulate_client", context=ctx)
        self.ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.action = ActionClient(self.node, Manipulate, topics.MANIPULATE)
        self.events: list[dict] = []
        self.clock_s = 0.0
        self.js: list[tuple[float, float]] = []  # (sim time, max |arm joint velocity|)
        self.node.create_subscription(String, topics.STATUS, lambda m: self.events.append(json.loads(m.data)),
                                      EVENT_QOS)
        self.node.create_subscription(Clock, topics.CLOCK, self._on_clock, 10)
        self.node.create_subscription(JointState, topics.JOINT_STATES, self._on_js, SENSOR_QOS)
        self.scene_pub = self.node.create_publisher(String, topics.SIM_LOAD_SCENE, RELIABLE_QOS)

    def _on_clock(self, msg: Clock) -> None:
        self.clock_s = msg.clock.sec + 1e-9 * msg.clock.nanosec

    def _on_js(self, msg: JointState) -> None:
        names = list(msg.name)
        if len(msg.velocity) == len(names) and all(n in names for n in ARM):
            v = np.abs([msg.velocity[names.index(n)] for n in ARM]).max()
            self.js.append((msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec, float(v)))

    def spin_until(self, cond, timeout_s: float, launcher=None) -> bool:
        """Spin until ``cond()`` holds (True) or ``timeout_s`` of wall time passed (False).

        With ``launcher``, a node process that exits meanwhile fails the test at once.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.ex.spin_once(timeout_sec=0.05)
            if launcher is not None:
                died = launcher.poll()
                assert died is None, f"node {died[0]} exited with {died[1]}"
            if cond():
                return True
        return False

    def since(self, n0: int, event: str, node: str | None = None) -> list[dict]:
        """The ``event`` status events that arrived after the first ``n0``."""
        return [e for e in self.events[n0:] if e["event"] == event and (node is None or e["node"] == node)]

    def publish(self, pub: Any, data: str, launcher: Launcher) -> None:
        """Publish once the subscriber on the other side is matched (a volatile topic drops earlier ones)."""
        assert self.spin_until(lambda: pub.get_subscription_count() > 0, 30.0, launcher), pub.topic_name
        pub.publish(String(data=data))

    def reload_scene(self, scene: dict[str, Any], launcher: Launcher) -> dict:
        """Reload a scene (``/sim/load_scene``: objects and arm as the bridge builds them) and wait for
        a feature cloud of it. Returns the bridge's ``scene_loaded`` event."""
        n1 = len(self.events)
        self.publish(self.scene_pub, json.dumps(scene), launcher)
        loaded = lambda: self.since(n1, "scene_loaded", "sim_bridge")  # noqa: E731
        assert self.spin_until(loaded, 60.0, launcher), "no scene_loaded"
        clock_loaded = self.clock_s
        fresh = lambda: any(e.get("stamp_s", 0.0) > clock_loaded  # noqa: E731 (a cloud of the new scene)
                            for e in self.since(n1, "cloud_published", "perception"))
        assert self.spin_until(fresh, 120.0, launcher), "no feature cloud of the reloaded scene"
        return loaded()[-1]

    def send(self, text: str, feedback: list, **options: Any):
        """Send a Manipulate goal; its feedback messages are appended to ``feedback``. Returns the handle."""
        fut = self.action.send_goal_async(Manipulate.Goal(instruction=text, **options),
                                          feedback_callback=lambda m: feedback.append(m.feedback))
        assert self.spin_until(fut.done, 30.0), "no goal response"
        return fut.result()


@contextlib.contextmanager
def sim_graph(bridge_params: dict[str, Any], client_cls: type = Client) -> Iterator[tuple[Any, Launcher]]:
    """The UR5 sim graph (its sim bridge on ``bridge_params``) and a client; yields (client, launcher).

    Returns once the graph is up: the action server ready, the simulated clock past 0.5 s and a
    feature cloud published. On exit the client is destroyed and every node stopped.
    """
    nodes = graph("sim", robot="ur5")
    for node in nodes:
        if node.name == "sim_bridge":
            node.parameters.update(bridge_params)
    out = open("/dev/null", "w")  # noqa: SIM115 (closed below)
    launcher = Launcher(nodes, out=out)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    c = client_cls(ctx)
    try:
        launcher.start()
        up = c.spin_until(lambda: c.action.server_is_ready() and c.clock_s > 0.5 and any(
            e["event"] == "cloud_published" for e in c.events), 400.0, launcher)
        assert up, f"graph did not come up: {[e['event'] for e in c.events][-20:]}"
        yield c, launcher
    finally:
        c.node.destroy_node()
        rclpy.shutdown(context=ctx)
        launcher.stop()
        out.close()
