# SPDX-License-Identifier: Apache-2.0
"""The policy node owns a task: cloud request, grasp, failed motion -> retry elsewhere -> success.

Real processes and DDS: the node runs as its own process with a checkpoint written here and a real
(randomly initialised, nothing downloaded) open_clip text tower; this test plays perception (answers
each /vla/perception/request with a feature cloud) and the executor (motion_done on /vla/status).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from geometry_msgs.msg import PoseArray, PoseStamped  # noqa: E402
from policy_proc import policy_node_and_client, spin_until  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402
from std_msgs.msg import Empty, String  # noqa: E402

from vla_common.conversions import numpy_to_pointcloud2, pose_stamped_to_matrix  # noqa: E402
from vla_common.qos import EVENT_QOS, RELIABLE_QOS, SENSOR_QOS  # noqa: E402
from vla_common.status import make_status  # noqa: E402

D = 512  # ViT-B-32 joint-space width


def _checkpoint(path, threshold):
    import torch

    from vla_policy.configuration import PolicyConfig
    from vla_policy.model import PolicyModel
    from vla_policy.policy import Policy

    torch.manual_seed(0)
    cfg = PolicyConfig.from_variant("SR", feature_dim=D, d_model=32, num_heads=4, num_layers=1,
                                    num_points=256, num_keep=64)
    Policy(PolicyModel(cfg), {"presence_threshold": threshold}).save(path)


def _box_cloud() -> tuple[np.ndarray, np.ndarray]:
    """A box on a table, 2500 points (N, 3), with random unit features (N, D)."""
    from clouds import box_scene

    rng = np.random.default_rng(0)
    xyz = box_scene()
    xyz = xyz[rng.choice(len(xyz), 2500, replace=False)].astype(np.float32)
    feats = rng.standard_normal((len(xyz), D)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    return xyz, feats


def _run_task(tmp_path, threshold, motion_results):
    ckpt = tmp_path / "ckpt"
    _checkpoint(ckpt, threshold)
    xyz, feats = _box_cloud()
    poses, requests, cand_msgs = [], [], []
    with policy_node_and_client(f"checkpoint:={ckpt}", "clip_model:=ViT-B-32", "max_attempts:=3",
                                "exclude_radius_m:=0.02", env={"OMP_NUM_THREADS": "1"},
                                client_name="policy_task_client") as (proc, node, ex, events, instr):
        node.create_subscription(PoseStamped, "/vla/grasp_pose", poses.append, RELIABLE_QOS)
        node.create_subscription(PoseArray, "/vla/grasp_candidates", cand_msgs.append, RELIABLE_QOS)
        node.create_subscription(Empty, "/vla/perception/request", lambda m: requests.append(time.time()),
                                 RELIABLE_QOS)
        cloud_pub = node.create_publisher(PointCloud2, "/vla/feature_cloud", SENSOR_QOS)
        status_pub = node.create_publisher(String, "/vla/status", EVENT_QOS)
        results = list(motion_results)
        answered = 0
        end = time.monotonic() + 120
        last_cloud = 0.0
        sent = False
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)
            assert proc.poll() is None, proc.output()
            answered_instr = [e for e in events if e["event"].startswith("instruction_")]
            if not sent or not answered_instr:
                # both directions discovered: our instruction reaches the node, and its requests and
                # status events reach us (discovery is not symmetric under load)
                linked = (node.count_subscribers("/vla/instruction") > 0
                          and node.count_publishers("/vla/perception/request") > 0
                          and node.count_publishers("/vla/status") > 1  # the node's and ours
                          and cloud_pub.get_subscription_count() > 0)
                if linked and time.monotonic() - last_cloud > 0.5:
                    instr.publish(String(data="grasp the box"))
                    sent = True
                    last_cloud = time.monotonic()
                continue
            if any(e["event"] in ("task_succeeded", "task_failed") for e in events):
                ex.spin_once(timeout_sec=0.5)  # catch a (wrong) second final event, if any
                break
            selected = [e for e in events if e["event"] == "grasp_selected"]
            if len(selected) > answered and results:
                ok = results.pop(0)
                answered += 1
                status_pub.publish(String(data=make_status("executor", "motion_done", "info", "test executor",
                                                           success=ok, kind="grasp")))
            elif answered == len(selected) and time.monotonic() - last_cloud > 1.0:
                # waiting for a decision: offer a fresh cloud every second (the node only takes one
                # stamped after its own request, so a missed request event cannot stall the task)
                cloud_pub.publish(numpy_to_pointcloud2(xyz, None, feats, "world", time.time()))
                last_cloud = time.monotonic()
    return events, poses, requests, cand_msgs


@pytest.mark.ros
@pytest.mark.slow
def test_task_retries_after_failed_grasp_then_succeeds(tmp_path):
    events, poses, requests, cand_msgs = _run_task(tmp_path, threshold=None, motion_results=[False, True])
    finals = [e for e in events if e["event"] in ("task_succeeded", "task_failed")]
    assert [e["event"] for e in finals] == ["task_succeeded"], events
    assert len(poses) == 2 and len(requests) >= 2 and cand_msgs
    a, b = (pose_stamped_to_matrix(p) for p in poses)
    assert poses[0].header.frame_id == "world"
    assert np.linalg.norm(a[:3, 3] - b[:3, 3]) > 0.02  # the retry avoids the failed grasp's region
    assert [e["event"] for e in events].count("grasp_selected") == 2


@pytest.mark.ros
@pytest.mark.slow
def test_target_not_found_ends_task(tmp_path):
    events, poses, _, _ = _run_task(tmp_path, threshold=1e9, motion_results=[])
    names = [e["event"] for e in events]
    assert "target_not_found" in names and not poses
    assert [n for n in names if n.startswith("task_")] == ["task_failed"]


@pytest.mark.ros
@pytest.mark.slow
def test_first_decision_uses_a_recent_cloud_and_a_retry_waits_for_a_new_one(tmp_path):
    """The task's first decision may use frames up to max_cloud_age_s old (the robot answers without
    waiting for the next camera frames); the retry after a failed motion takes only a cloud made
    after its own request."""
    ckpt = tmp_path / "ckpt"
    _checkpoint(ckpt, None)
    xyz, feats = _box_cloud()
    with policy_node_and_client(f"checkpoint:={ckpt}", "clip_model:=ViT-B-32", "max_attempts:=3",
                                "max_cloud_age_s:=30.0", env={"OMP_NUM_THREADS": "1"},
                                client_name="policy_fresh_client") as (proc, node, ex, events, instr):
        cloud_pub = node.create_publisher(PointCloud2, "/vla/feature_cloud", SENSOR_QOS)
        status_pub = node.create_publisher(String, "/vla/status", EVENT_QOS)

        def spin(cond, timeout_s):
            return spin_until(proc, ex, cond, timeout_s)

        linked = spin(lambda: node.count_subscribers("/vla/instruction") > 0
                      and cloud_pub.get_subscription_count() > 0
                      and node.count_publishers("/vla/status") > 1, 60.0)
        assert linked, "no discovery"
        for _ in range(30):  # the node answers (an empty instruction is refused): it is up and spinning
            instr.publish(String(data=""))
            if spin(lambda: any(e["event"] == "instruction_refused" for e in events), 1.0):
                break
        # an earlier motion that a cancel stopped: the simulated controller's report of the trajectory
        # it started tracking comes after the executor's motion_done; the arm is still nonetheless
        for node_name, event in (("executor", "motion_started"), ("executor", "motion_done"),
                                 ("sim_bridge", "motion_started")):
            status_pub.publish(String(data=make_status(node_name, event, "info", "test", success=False)))
            spin(lambda: False, 0.1)
        spin(lambda: False, 0.3)
        for _ in range(3):  # clouds taken before the instruction (best effort: send a few)
            cloud_pub.publish(numpy_to_pointcloud2(xyz, None, feats, "world", time.time()))
            spin(lambda: False, 0.1)
        spin(lambda: False, 0.5)
        selected = lambda: [e for e in events if e["event"] == "grasp_selected"]  # noqa: E731
        for _ in range(20):  # until the instruction is discovered and answered
            instr.publish(String(data="grasp the box"))
            if spin(lambda: any(e["event"] == "instruction_received" for e in events), 1.0):
                break
        assert spin(lambda: selected(), 30.0), [e["event"] for e in events]  # no new cloud was sent
        status_pub.publish(String(data=make_status("executor", "motion_done", "info", "test executor",
                                                   success=False, kind="grasp")))
        assert spin(lambda: any(e["event"] == "retrying" for e in events), 10.0), [e["event"] for e in events]
        assert not spin(lambda: len(selected()) > 1, 3.0)  # the old clouds are not used for the retry
        for _ in range(20):
            cloud_pub.publish(numpy_to_pointcloud2(xyz, None, feats, "world", time.time()))
            if spin(lambda: len(selected()) > 1, 1.0):
                break
        assert len(selected()) == 2, [e["event"] for e in events]
