# SPDX-License-Identifier: Apache-2.0
"""QoS profiles, one per kind of stream, chosen on purpose (STYLE.md "QoS per stream").

* ``SENSOR_QOS``: camera images and joint states. Best effort, keep last 5, volatile: a late
  frame is worth less than the next one, and a best-effort subscriber also matches reliable
  publishers (realsense2_camera publishes reliable by default).
* ``RELIABLE_QOS``: commands and events that must not be lost (instructions, grasp/place poses,
  trajectories, /vla/status, the feature cloud). Reliable, keep last 10, volatile.
* ``EVENT_QOS``: instructions and ``/vla/status`` events. Reliable, volatile, keep last 1000:
  bursts must not be dropped (200 instructions in one second are each answered; a task's events
  while the policy loads its checkpoint all arrive), and these messages are a few hundred bytes.
* ``LATCHED_QOS``: state that a late joiner must still get (camera info, static calibration,
  the last candidate set). Reliable, transient local, keep last 1.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                          reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
EVENT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                       reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

__all__ = ["SENSOR_QOS", "RELIABLE_QOS", "EVENT_QOS", "LATCHED_QOS"]

# ``/vla/status`` as the policy node (the task owner) writes it: EVENT_QOS, but transient local, so a
# subscriber that asks for transient local and joins late still gets the last events, each task's
# final ``task_succeeded`` / ``task_failed`` among them. Volatile subscribers match it as before.
EVENT_LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                               reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL)
# ``/vla/task_status`` (vla_interfaces/TaskStatus): the final status of the last 100 tasks, latched.
TASK_STATUS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
__all__ += ["EVENT_LATCHED_QOS", "TASK_STATUS_QOS"]
