# SPDX-License-Identifier: Apache-2.0
"""``vla say "<instruction>"``: publish one instruction to a running graph, optionally follow it.

Publishes one std_msgs/String on ``/vla/instruction`` once a subscriber (the policy node) has
matched, so the message is not lost to discovery. With ``--wait`` it prints the ``/vla/status``
events until the task ends (``task_succeeded`` exits 0, ``task_failed`` exits 1, a timeout 3).

With ``--action`` it sends the instruction as a goal of the ``/vla/manipulate`` action instead
(vla_interfaces/action/Manipulate): it prints each feedback (stage, attempt, state, chosen pose)
and the result (exit 0 on success, 1 otherwise, 3 on a timeout); Ctrl-C or the timeout cancels
the goal, which stops the arm.
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
    p.add_argument("--action", action="store_true",
                   help="send a /vla/manipulate goal instead: feedback per stage, result; Ctrl-C cancels it")
    p.add_argument("--max-attempts", type=int, default=0,
                   help="with --action: attempts per stage (0: the node's parameter)")
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

    if args.action:
        return _say_action(text, args)

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


def _say_action(text: str, args: argparse.Namespace) -> int:
    """``vla say --action``: one /vla/manipulate goal with feedback and result (module docstring)."""
    import rclpy
    from rclpy.action import ActionClient

    from vla_interfaces.action import Manipulate

    rclpy.init(args=None)
    node = rclpy.create_node("vla_say")
    client = ActionClient(node, Manipulate, topics.MANIPULATE)
    goal_handle = None

    def spin_until(cond, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
            if cond():
                return True
        return False

    def on_feedback(msg) -> None:
        f = msg.feedback
        where = ""
        if f.pose.header.frame_id:
            p = f.pose.pose.position
            where = f" at ({p.x:.3f}, {p.y:.3f}, {p.z:.3f}) in {f.pose.header.frame_id}"
        print(f"feedback: stage {f.stage_index + 1}/{f.stage_count} {f.stage} ({f.text!r}), "
              f"attempt {f.attempt}: {f.state}{where}", flush=True)

    try:
        if not client.wait_for_server(timeout_sec=args.match_timeout):
            print(f"vla say: no {topics.MANIPULATE} action server after {args.match_timeout:.0f} s; is the "
                  f"graph running with the same ROS_DOMAIN_ID ({os.environ.get('ROS_DOMAIN_ID', '0')})?",
                  file=sys.stderr)
            return 1
        goal = Manipulate.Goal(instruction=text, max_attempts=min(255, max(0, args.max_attempts)))
        fut = client.send_goal_async(goal, feedback_callback=on_feedback)
        if not spin_until(fut.done, args.match_timeout):
            print("vla say: the action server did not answer the goal", file=sys.stderr)
            return 1
        goal_handle = fut.result()
        if not goal_handle.accepted:
            print("vla say: goal rejected (a task is running; one at a time)", file=sys.stderr)
            return 1
        print(f"goal accepted on {topics.MANIPULATE}: {text!r}", flush=True)
        res = goal_handle.get_result_async()
        if not spin_until(res.done, args.timeout):
            print(f"vla say: no result within {args.timeout:.0f} s; cancelling the goal", file=sys.stderr)
            cancel = goal_handle.cancel_goal_async()
            spin_until(cancel.done, 5.0)
            return 3
        r = res.result().result
        print(f"result: {r.outcome}{': ' + r.reason if r.reason else ''} (stages {list(r.stages)}, "
              f"{len(r.poses)} pose(s))", flush=True)
        return 0 if r.success else 1
    except KeyboardInterrupt:
        if goal_handle is not None and goal_handle.accepted:
            cancel = goal_handle.cancel_goal_async()
            spin_until(cancel.done, 5.0)
            print("cancelled", flush=True)
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
