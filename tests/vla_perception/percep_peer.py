# SPDX-License-Identifier: Apache-2.0
"""Test peer for the perception node: publishes three rendered cameras, requests clouds, reports JSON.

Phase 1 publishes all three cameras and requests a cloud; phase 2 stops the ``right`` camera and
requests again (the node must publish from two views and report ``view_dropped``); phase 3
stops every camera and keeps requesting (the node must report ``cameras_silent``). Prints one
JSON line with what it received, then exits.
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from percep_scene import render_scene
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Empty, String

from vla_common import conversions as conv
from vla_common.qos import EVENT_QOS, RELIABLE_QOS, SENSOR_QOS
from vla_common.status import parse_status


class Peer(Node):
    def __init__(self) -> None:
        super().__init__("percep_test_peer")
        self.frames = render_scene(160, 120)
        self.pubs = {}
        for f in self.frames:
            base = f"/cameras/{f.name}"
            self.pubs[f.name] = (
                self.create_publisher(Image, f"{base}/color/image_raw", SENSOR_QOS),
                self.create_publisher(Image, f"{base}/aligned_depth_to_color/image_raw", SENSOR_QOS),
                self.create_publisher(CameraInfo, f"{base}/color/camera_info", SENSOR_QOS))
        self.req = self.create_publisher(Empty, "/vla/perception/request", RELIABLE_QOS)
        self.create_subscription(PointCloud2, "/vla/feature_cloud", self.on_cloud, RELIABLE_QOS)
        self.create_subscription(String, "/vla/status", self.on_status, EVENT_QOS)
        self.clouds: list[dict] = []
        self.events: list[dict] = []
        self.phase = 1
        self.t = 100.0
        self.create_timer(0.1, self.tick)

    def tick(self) -> None:
        self.t += 0.1
        for f in self.frames:
            if self.phase == 3 or (self.phase == 2 and f.name == "right"):
                continue
            c, d, i = self.pubs[f.name]
            c.publish(conv.numpy_to_image(f.rgb, "rgb8", f"{f.name}_color_optical_frame", self.t))
            d.publish(conv.metres_to_depth_image(f.depth, "16UC1", f"{f.name}_color_optical_frame", self.t))
            i.publish(conv.intrinsics_to_camera_info(f.intrinsics, f"{f.name}_color_optical_frame", self.t))
        self.req.publish(Empty())

    def on_cloud(self, msg: PointCloud2) -> None:
        xyz, rgb, feats = conv.pointcloud2_to_numpy(msg)
        self.clouds.append({"phase": self.phase, "n": int(xyz.shape[0]), "dim": int(feats.shape[1]),
                            "has_rgb": rgb is not None, "frame_id": msg.header.frame_id,
                            "finite": bool((feats == feats).all()), "z_max": float(xyz[:, 2].max())})
        if self.phase == 1:
            self.phase = 2

    def on_status(self, msg: String) -> None:
        s = parse_status(msg.data)
        if s["node"] == "perception":
            keys = ("event", "level", "camera", "dropped_views", "n_points", "cameras", "seconds", "waited_s")
            self.events.append({"phase": self.phase, **{k: s.get(k) for k in keys}})
            if self.phase == 2 and s["event"] == "cloud_published" and s.get("dropped_views"):
                self.phase = 3


def main() -> int:
    rclpy.init()
    node = Peer()
    deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 60)
    try:
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
            if any(e["event"] == "cameras_silent" for e in node.events):
                break
        print(json.dumps({"clouds": node.clouds, "events": node.events}))
    finally:
        node.destroy_node()
        rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
