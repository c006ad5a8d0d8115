# SPDX-License-Identifier: Apache-2.0
"""Test listener: logs every std_msgs/String it hears on ``chatter`` (``heard: <text>``)."""

from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import String

from vla_common.node_runner import spin_node
from vla_common.qos import RELIABLE_QOS


class Listener(Node):
    """Logs received messages."""

    def __init__(self) -> None:
        super().__init__("listener")
        self.sub = self.create_subscription(String, "chatter", self._on_msg, RELIABLE_QOS)
        self.get_logger().info("listener up, subscribed to chatter")

    def _on_msg(self, msg: String) -> None:
        self.get_logger().info(f"heard: {msg.data}")


def main(args: list[str] | None = None) -> None:
    """Run the listener until shut down."""
    spin_node(Listener, args)


if __name__ == "__main__":
    main()
