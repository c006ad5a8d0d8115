# SPDX-License-Identifier: Apache-2.0
"""The one ``/vla/status`` publisher every node uses: JSON event out, and the same line in the log.

``StatusPublisher(node, "executor", robot="ur5")("motion_done", "info", "grasp: done", success=True)``
publishes one event (:func:`vla_common.status.make_status`; the constructor's fields are added to
every event) and logs ``event: detail`` at the event's level. Needs rclpy (nodes only).
"""

from __future__ import annotations

from typing import Any

from rclpy.qos import QoSProfile
from std_msgs.msg import String

from vla_common import topics
from vla_common.qos import EVENT_QOS
from vla_common.status import make_status


class StatusPublisher:
    """Publishes a node's status events on ``/vla/status`` and logs them.

    Args:
        node: the rclpy node.
        name: the ``node`` field of every event.
        qos: the writer's QoS (EVENT_QOS; the task owner uses EVENT_LATCHED_QOS).
        log: also log each event (perception, at 1 Hz of clouds, does not).
        always: fields added to every event (e.g. ``robot``).
    """

    def __init__(self, node: Any, name: str, qos: QoSProfile = EVENT_QOS, log: bool = True,
                 **always: Any) -> None:
        self.node, self.name, self.always, self.log = node, name, always, log
        self.pub = node.create_publisher(String, topics.STATUS, qos)

    def __call__(self, event: str, level: str = "info", detail: str = "", **fields: Any) -> str:
        """Publish one event; returns the JSON text."""
        text = make_status(self.name, event, level, detail, **{**self.always, **fields})
        self.pub.publish(String(data=text))
        if not self.log:
            return text
        log = self.node.get_logger()
        # rclpy ties a severity to each call site, so one call per level
        if level == "info":
            log.info(f"{event}: {detail}")
        elif level == "warn":
            log.warning(f"{event}: {detail}")
        else:
            log.error(f"{event}: {detail}")
        return text
