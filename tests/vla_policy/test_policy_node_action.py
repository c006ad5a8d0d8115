# SPDX-License-Identifier: Apache-2.0
"""The policy node's /vla/manipulate action, its e-stop and its run-time parameter checks.

Real processes and DDS: the policy node runs as its own process (a checkpoint written here, a real
randomly initialised open_clip text tower); this process is the action client and plays perception
(answers the cloud request). An e-stop sent right after the cloud, while the node decides, ends
the task with ``failed`` (reason e-stop) and no pose is ever sent; goals are refused while the
e-stop is engaged and accepted again after release; bad goal options are refused with a reason;
parameters set at run time are validated (a bad value and a read-only parameter are refused).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
Manipulate = pytest.importorskip("vla_interfaces.action").Manipulate
from geometry_msgs.msg import PoseStamped  # noqa: E402
from policy_proc import policy_node_and_client  # noqa: E402
from policy_proc import spin_until as spin_until_alive  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from vla_common import topics  # noqa: E402
from vla_common.conversions import numpy_to_pointcloud2  # noqa: E402
from vla_common.qos import RELIABLE_QOS, SENSOR_QOS  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_policy_node_task import D, _checkpoint  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_action_estop_while_deciding_goal_options_and_parameters(tmp_path):
    from clouds import box_scene

    ckpt = tmp_path / "ckpt"
    _checkpoint(ckpt, None)
    rng = np.random.default_rng(0)
    xyz = box_scene()
    xyz = xyz[rng.choice(len(xyz), 2500, replace=False)].astype(np.float32)
    feats = rng.standard_normal((len(xyz), D)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    poses = []
    with policy_node_and_client(f"checkpoint:={ckpt}", "clip_model:=ViT-B-32", env={"OMP_NUM_THREADS": "1"},
                                client_name="policy_action_client") as (proc, node, ex, events, _):
        client = ActionClient(node, Manipulate, topics.MANIPULATE)
        node.create_subscription(PoseStamped, topics.GRASP_POSE, poses.append, RELIABLE_QOS)
        cloud_pub = node.create_publisher(PointCloud2, topics.FEATURE_CLOUD, SENSOR_QOS)
        estop_pub = node.create_publisher(Bool, topics.ESTOP, RELIABLE_QOS)
        setp = node.create_client(SetParameters, "/policy/set_parameters")

        def spin_until(cond, timeout_s):
            return spin_until_alive(proc, ex, cond, timeout_s)

        def run_goal(text, feedback, on_feedback=None, **options):
            fut = client.send_goal_async(Manipulate.Goal(instruction=text, **options),
                                         feedback_callback=lambda m: feedback.append(m.feedback))
            assert spin_until(fut.done, 30.0)
            gh = fut.result()
            assert gh.accepted
            res = gh.get_result_async()
            while not res.done():
                assert spin_until(lambda: res.done() or (on_feedback and on_feedback()), 60.0), "no result"
            return res.result().result

        up = spin_until(lambda: client.server_is_ready() and cloud_pub.get_subscription_count() > 0
                        and estop_pub.get_subscription_count() > 0 and setp.service_is_ready(), 120.0)
        assert up, "policy node did not come up"

        # e-stop while the node decides
        fb: list = []
        sent = []

        def offer_cloud_then_estop():
            if fb and not sent:
                cloud_pub.publish(numpy_to_pointcloud2(xyz, None, feats, "world", time.time()))
                sent.append(time.monotonic())
            elif sent and len(sent) == 1 and time.monotonic() - sent[0] > 0.1:
                estop_pub.publish(Bool(data=True))
                sent.append(time.monotonic())
            return False

        r = run_goal("grasp the box", fb, offer_cloud_then_estop)
        assert not r.success and r.outcome == "failed" and "e-stop" in r.reason, r
        spin_until(lambda: False, 1.0)
        assert not poses, "a grasp pose was sent after the e-stop"
        final = [e for e in events if e["event"] == "task_failed"][-1]
        print(f"e-stop interrupted the task while: {final.get('interrupted')}")
        assert final["reason"] == "estop" and final["interrupted"] in ("deciding", "wait_cloud")

        # refused while engaged, accepted once released (and refused for a bad option)
        r = run_goal("grasp the box", [])
        assert r.outcome == "refused" and "e-stop" in r.reason
        estop_pub.publish(Bool(data=False))
        spin_until(lambda: False, 0.5)
        r = run_goal("grasp the box", [], max_attempts=9)
        assert r.outcome == "refused" and "max_attempts" in r.reason

        # parameters are validated when set
        def set_params(*params):
            fut = setp.call_async(SetParameters.Request(parameters=[p.to_parameter_msg() for p in params]))
            assert spin_until(fut.done, 30.0)
            return fut.result().results

        bad, ro = set_params(Parameter("max_attempts", value=0), Parameter("checkpoint", value="BASE"))
        assert not bad.successful and "max_attempts" in bad.reason
        assert not ro.successful and "read-only" in ro.reason
        (ok,) = set_params(Parameter("cloud_timeout_s", value=5.0))
        assert ok.successful
