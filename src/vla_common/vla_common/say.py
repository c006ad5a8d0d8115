# SPDX-License-Identifier: Apache-2.0
"""``vla say "<instruction>"``: publish one instruction to a running graph, optionally follow it.

Publishes one std_msgs/String on ``/vla/instruction`` once a subscriber (the policy node) has
matched, so the message is not lost to discovery. With ``--wait`` it prints the ``/vla/status``
events until the task ends (``task_succeeded`` exits 0, ``task_failed`` exits 1, a timeout 3).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from vla_common import topics
from vla_common.ros_env import localhost_env
from vla_common.status import parse_status

INSTRUCTION_TOPIC = topics.INSTRUCTION
STATUS_TOPIC = topics.STATUS
END_EVENTS = ("task_succeeded", "task_failed")


def format_event(event: dict) -> str:
    """One status event as a line for a person."""
    extra = {k: v for k, v in event.items() if k not in ("node", "event", "level", "detail")}
    tail = f"  {extra}" if extra else ""
    return f"[{event['node']}] {event['level'].upper():5s} {event['event']}: {event['detail']}{tail}"


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``vla say``."""
    p = argparse.ArgumentParser(prog="vla say", description="Publish one instruction on /vla/instruction.")
    p.add_argument("instruction", help='what the robot should do, e.g. "put the red mug on the plate"')
    p.add_argument("--wait", action="store_true", help="print /vla/status events until the task ends")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the task with --wait")
    p.add_argument("--match-timeout", type=float, default=10.0,
                   help="seconds to wait for a subscriber on /vla/instruction")
    p.add_argument("--local", action="store_true",
                   help="loopback-only DDS like `vla launch sim` (keeps $ROS_DOMAIN_ID)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla say``."""
    args = build_parser().parse_args(argv)
    text = args.instruction.strip()
    if not text:
        print("vla say: the instruction is empty", file=sys.stderr)
        return 2
    if args.local:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        os.environ.update(localhost_env(domain_id=int(domain) if domain.isdigit() else 0))

    import rclpy
    from rclpy.duration import Duration
    from std_msgs.msg import String

    from vla_common.qos import EVENT_QOS

    rclpy.init(args=None)
    node = rclpy.create_node("vla_say")
    result = {"event": None}

    def on_status(msg: String) -> None:
        try:
            event = parse_status(msg.data)
        except ValueError as exc:
            print(f"(unparsable status message: {exc})", flush=True)
            return
        print(format_event(event), flush=True)
        if event["event"] in END_EVENTS and result["event"] is None:
            result["event"] = event["event"]

    try:
        if args.wait:  # subscribe first so no event of this task is missed
            node.create_subscription(String, STATUS_TOPIC, on_status, EVENT_QOS)
        pub = node.create_publisher(String, INSTRUCTION_TOPIC, EVENT_QOS)
        deadline = time.monotonic() + args.match_timeout
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                print(f"vla say: nothing subscribes to {INSTRUCTION_TOPIC} after {args.match_timeout:.0f} s; "
                      f"is the graph running (vla launch sim) with the same ROS_DOMAIN_ID "
                      f"({os.environ.get('ROS_DOMAIN_ID', '0')})?", file=sys.stderr)
                return 1
            rclpy.spin_once(node, timeout_sec=0.05)
        pub.publish(String(data=text))
        pub.wait_for_all_acked(Duration(seconds=2.0))
        print(f"sent on {INSTRUCTION_TOPIC}: {text!r}", flush=True)
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.timeout
        while result["event"] is None and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        if result["event"] is None:
            print(f"vla say: no task_succeeded/task_failed within {args.timeout:.0f} s", file=sys.stderr)
            return 3
        return 0 if result["event"] == "task_succeeded" else 1
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
