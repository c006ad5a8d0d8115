# SPDX-License-Identifier: Apache-2.0
"""Test talker: publishes ``hello <n>`` (std_msgs/String) on ``chatter`` at ``rate_hz``."""

from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import String

from vla_common.node_runner import spin_node
from vla_common.qos import RELIABLE_QOS


class Talker(Node):
    """Publishes a counter message on a timer."""

    def __init__(self) -> None:
        super().__init__("talker")
        self.rate_hz = float(self.declare_parameter("rate_hz", 10.0).value)
        if self.rate_hz <= 0.0:
            raise ValueError(f"parameter rate_hz must be > 0, got {self.rate_hz}")
        self.count = 0
        self.pub = self.create_publisher(String, "chatter", RELIABLE_QOS)
        self.timer = self.create_timer(1.0 / self.rate_hz, self._tick)
        self.get_logger().info(f"talker up, publishing on chatter at {self.rate_hz} Hz")

    def _tick(self) -> None:
        self.pub.publish(String(data=f"hello {self.count}"))
        self.count += 1


def main(args: list[str] | None = None) -> None:
    """Run the talker until shut down."""
    spin_node(Talker, args)


if __name__ == "__main__":
    main()
