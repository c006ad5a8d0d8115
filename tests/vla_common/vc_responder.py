# SPDX-License-Identifier: Apache-2.0
"""Test helper playing the policy's side of /vla/instruction: answers each instruction with status
events ``instruction_received`` then ``task_succeeded`` (or ``task_failed`` when the text says
"fail")."""

from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

from vla_common.qos import EVENT_QOS
from vla_common.status import make_status


class Responder(Node):
    def __init__(self) -> None:
        super().__init__("policy")
        self.status = self.create_publisher(String, "/vla/status", EVENT_QOS)
        self.create_subscription(String, "/vla/instruction", self._on, EVENT_QOS)
        print("responder up", flush=True)

    def _on(self, msg: String) -> None:
        self.status.publish(String(data=make_status("policy", "instruction_received", "info",
                                                    f"got {msg.data!r}", instruction=msg.data)))
        end = "task_failed" if "fail" in msg.data else "task_succeeded"
        self.status.publish(String(data=make_status("policy", end, "info", "done", instruction=msg.data)))


def main() -> None:
    rclpy.init()
    node = Responder()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
