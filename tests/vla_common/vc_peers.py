# SPDX-License-Identifier: Apache-2.0
"""Helper processes for the transport tests: ``python vc_peers.py pub|sub --seed N``.

Both sides build the same payload from the seed (a 640x480 rgb8 image, a 20k-point cloud with
256 float32 feature channels and colours, a pose), so the subscriber can check every byte of what
arrives. The subscriber prints one JSON line and exits 0 when all three arrived intact, 1 on a
mismatch or a timeout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2

from vla_common import conversions as conv
from vla_common.qos import RELIABLE_QOS
from vla_common.transforms import pose_to_matrix

N_POINTS, N_FEATURES = 20_000, 256


def payload(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8),
        "xyz": rng.normal(size=(N_POINTS, 3)).astype(np.float32),
        "rgb": rng.integers(0, 256, size=(N_POINTS, 3), dtype=np.uint8),
        "features": rng.normal(size=(N_POINTS, N_FEATURES)).astype(np.float32),
        "pose": pose_to_matrix(rng.normal(size=3), rng.normal(size=4)),
    }


class Pub(Node):
    def __init__(self, seed: int) -> None:
        super().__init__("peer_pub")
        p = payload(seed)
        self.msgs = {
            "image": conv.numpy_to_image(p["image"], "rgb8", "cam"),
            "cloud": conv.numpy_to_pointcloud2(p["xyz"], p["rgb"], p["features"], "world"),
            "pose": conv.matrix_to_pose_stamped(p["pose"], "world"),
        }
        self.pubs = {
            "image": self.create_publisher(Image, "/test/image", RELIABLE_QOS),
            "cloud": self.create_publisher(PointCloud2, "/test/cloud", RELIABLE_QOS),
            "pose": self.create_publisher(PoseStamped, "/test/pose", RELIABLE_QOS),
        }
        self.timer = self.create_timer(0.5, self._tick)

    def _tick(self) -> None:
        for key, pub in self.pubs.items():
            if pub.get_subscription_count() > 0:
                self.pubs[key].publish(self.msgs[key])


class Sub(Node):
    def __init__(self, seed: int) -> None:
        super().__init__("peer_sub")
        self.expected = payload(seed)
        self.ok: dict[str, bool] = {}
        self.errors: list[str] = []
        self.create_subscription(Image, "/test/image", self._image, RELIABLE_QOS)
        self.create_subscription(PointCloud2, "/test/cloud", self._cloud, RELIABLE_QOS)
        self.create_subscription(PoseStamped, "/test/pose", self._pose, RELIABLE_QOS)

    def _check(self, key: str, good: bool) -> None:
        self.ok[key] = good
        if not good:
            self.errors.append(f"{key} differs from what was sent")

    def _image(self, msg: Image) -> None:
        img = conv.image_to_numpy(msg)
        self._check("image", msg.encoding == "rgb8" and np.array_equal(img, self.expected["image"]))

    def _cloud(self, msg: PointCloud2) -> None:
        xyz, rgb, feats = conv.pointcloud2_to_numpy(msg)
        e = self.expected
        self._check("cloud", msg.width == N_POINTS and np.array_equal(xyz, e["xyz"])
                    and np.array_equal(rgb, e["rgb"]) and np.array_equal(feats, e["features"]))

    def _pose(self, msg: PoseStamped) -> None:
        T = conv.pose_stamped_to_matrix(msg)
        good = msg.header.frame_id == "world" and np.allclose(T, self.expected["pose"], atol=1e-12)
        self._check("pose", bool(good))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["pub", "sub"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    rclpy.init()
    node = Pub(args.seed) if args.role == "pub" else Sub(args.seed)
    try:
        if args.role == "pub":
            print("pub ready", flush=True)
            rclpy.spin(node)
            return 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and len(node.ok) < 3 and not node.errors:
            rclpy.spin_once(node, timeout_sec=0.1)
        print(json.dumps({"ok": node.ok, "errors": node.errors}), flush=True)
        return 0 if len(node.ok) == 3 and all(node.ok.values()) else 1
    except KeyboardInterrupt:
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
