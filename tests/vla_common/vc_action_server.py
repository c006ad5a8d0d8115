# SPDX-License-Identifier: Apache-2.0
"""Test helper playing the policy's side of /vla/manipulate for `vla say --action`: a real rclpy action
server (vla_interfaces/action/Manipulate) that sends two feedbacks and succeeds, aborts when the text
says "fail", and waits for a cancel when it says "forever"."""

from __future__ import annotations

import time

import rclpy
from rclpy.action import ActionServer, CancelResponse
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from vla_common import topics
from vla_interfaces.action import Manipulate


class FakePolicyServer(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        self.server = ActionServer(self, Manipulate, topics.MANIPULATE, self._execute,
                                   cancel_callback=lambda _g: CancelResponse.ACCEPT)
        print("action server up", flush=True)

    def _execute(self, gh):
        text = gh.request.instruction
        for state in ("perceiving", "moving"):
            gh.publish_feedback(Manipulate.Feedback(stage="grasp", stage_index=0, stage_count=1, attempt=1,
                                                    state=state, text=text))
            time.sleep(0.1)
        if "forever" in text:
            while not gh.is_cancel_requested:
                time.sleep(0.05)
            gh.canceled()
            return Manipulate.Result(outcome="cancelled", reason="cancel requested", stages=["grasp"])
        if "fail" in text:
            gh.abort()
            return Manipulate.Result(outcome="failed", reason="told to fail", stages=["grasp"])
        gh.succeed()
        return Manipulate.Result(success=True, outcome="succeeded", stages=["grasp"])


def main() -> None:
    rclpy.init()
    node = FakePolicyServer()
    try:
        rclpy.spin(node, executor=MultiThreadedExecutor())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
