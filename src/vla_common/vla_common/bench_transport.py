# SPDX-License-Identifier: Apache-2.0
"""Transport benchmark: Image and PointCloud2 between two processes at 30 Hz.

Two OS processes (a publisher and a subscriber, both real rclpy nodes on the loopback-only DDS
profile) exchange first a 640x480 rgb8 Image, then a 20k-point PointCloud2 with packed colour and
256 float32 feature channels (the size of the perception node's feature cloud), each at 30 Hz for
about 5 s. The publisher stamps each message with the wall clock just before ``publish``; the
subscriber compares the stamp with the time the callback runs (both processes share the host
clock), so the latency covers serialisation, DDS transport and rclpy's conversion to a Python
message. The numpy conversion costs (``conversions.py``) are measured separately on each side.

``run(out_dir)`` writes ``bench_transport.json``; ``python -m vla_common.bench_transport pub|sub``
are the two processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_common.ros_env import localhost_env

RATE_HZ = 30.0
DURATION_S = 5.0
IMAGE_HW = (480, 640)
CLOUD_POINTS, CLOUD_FEATURES = 20_000, 256
STREAMS = ("image", "cloud")


def _payloads(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, size=(*IMAGE_HW, 3), dtype=np.uint8),
        "xyz": rng.normal(size=(CLOUD_POINTS, 3)).astype(np.float32),
        "rgb": rng.integers(0, 256, size=(CLOUD_POINTS, 3), dtype=np.uint8),
        "features": rng.normal(size=(CLOUD_POINTS, CLOUD_FEATURES)).astype(np.float32),
    }


def _stats_ms(values_s: list[float]) -> dict[str, float | None]:
    if not values_s:
        return {"median": None, "p95": None, "max": None}
    a = np.asarray(values_s) * 1e3
    return {"median": round(float(np.median(a)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "max": round(float(a.max()), 3)}


def _publisher(rate_hz: float, duration_s: float, settle_s: float) -> int:
    import rclpy
    from rclpy.duration import Duration
    from rclpy.node import Node
    from sensor_msgs.msg import Image, PointCloud2
    from std_msgs.msg import String

    from vla_common import conversions as conv
    from vla_common.qos import RELIABLE_QOS, SENSOR_QOS

    class BenchPublisher(Node):
        """Publishes one stream after the other on a timer, then ``done`` with its own stats."""

        def __init__(self) -> None:
            super().__init__("bench_transport_pub")
            p = _payloads()
            t0 = time.perf_counter()
            image = conv.numpy_to_image(p["image"], "rgb8", "bench_camera_optical_frame")
            t1 = time.perf_counter()
            cloud = conv.numpy_to_pointcloud2(p["xyz"], p["rgb"], p["features"], "world")
            t2 = time.perf_counter()
            self.encode_s = {"image": t1 - t0, "cloud": t2 - t1}
            self.msgs = {"image": image, "cloud": cloud}
            self.pubs = {"image": self.create_publisher(Image, "/bench/image", SENSOR_QOS),
                         "cloud": self.create_publisher(PointCloud2, "/bench/cloud", RELIABLE_QOS)}
            self.done_pub = self.create_publisher(String, "/bench/done", RELIABLE_QOS)
            self.sent = {s: 0 for s in STREAMS}
            self.publish_s: dict[str, list[float]] = {s: [] for s in STREAMS}
            self.phase = 0
            self.phase_start: float | None = None
            self.resume_at = 0.0  # monotonic time before which the timer idles (drain between streams)
            self.finished = False
            self.timer = self.create_timer(1.0 / rate_hz, self._tick)

        def _tick(self) -> None:
            if self.phase >= len(STREAMS):
                if not self.finished and self.done_pub.get_subscription_count() > 0:
                    stats = {"sent": self.sent, "encode_ms": {k: v * 1e3 for k, v in self.encode_s.items()},
                             "publish_ms": {k: _stats_ms(v) for k, v in self.publish_s.items()}}
                    self.done_pub.publish(String(data=json.dumps(stats)))
                    self.finished = True
                return
            now = time.monotonic()
            if now < self.resume_at:
                return
            stream = STREAMS[self.phase]
            pub = self.pubs[stream]
            if pub.get_subscription_count() == 0:
                return  # wait for the subscriber before the clock of this phase starts
            if self.phase_start is None:
                self.phase_start = now
            if now - self.phase_start > duration_s:
                self.phase, self.phase_start = self.phase + 1, None
                self.resume_at = now + settle_s  # let the last messages drain before the next stream
                return
            msg = self.msgs[stream]
            t = time.time()
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1.0) * 1e9)
            t0 = time.perf_counter()
            pub.publish(msg)
            self.publish_s[stream].append(time.perf_counter() - t0)
            self.sent[stream] += 1

    rclpy.init()
    node = BenchPublisher()
    try:
        deadline = time.monotonic() + 120.0
        while not node.finished and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.done_pub.wait_for_all_acked(Duration(seconds=5.0))
        return 0 if node.finished else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _subscriber(out_path: Path, timeout_s: float) -> int:
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image, PointCloud2
    from std_msgs.msg import String

    from vla_common import conversions as conv
    from vla_common.qos import RELIABLE_QOS, SENSOR_QOS

    class BenchSubscriber(Node):
        """Records latency, arrival times and decode cost per stream."""

        def __init__(self) -> None:
            super().__init__("bench_transport_sub")
            self.latency_s: dict[str, list[float]] = {s: [] for s in STREAMS}
            self.arrival_s: dict[str, list[float]] = {s: [] for s in STREAMS}
            self.decode_s: dict[str, list[float]] = {s: [] for s in STREAMS}
            self.bytes = {s: 0 for s in STREAMS}
            self.publisher_stats: dict | None = None
            self.create_subscription(Image, "/bench/image", lambda m: self._on(m, "image"), SENSOR_QOS)
            self.create_subscription(PointCloud2, "/bench/cloud", lambda m: self._on(m, "cloud"),
                                     RELIABLE_QOS)
            self.create_subscription(String, "/bench/done", self._done, RELIABLE_QOS)

        def _on(self, msg: Any, stream: str) -> None:
            now = time.time()
            self.latency_s[stream].append(now - conv.time_to_s(msg.header.stamp))
            self.arrival_s[stream].append(time.monotonic())
            self.bytes[stream] = len(msg.data)
            t0 = time.perf_counter()
            if stream == "image":
                conv.image_to_numpy(msg)
            else:
                conv.pointcloud2_to_numpy(msg)
            self.decode_s[stream].append(time.perf_counter() - t0)

        def _done(self, msg: String) -> None:
            self.publisher_stats = json.loads(msg.data)

    rclpy.init()
    node = BenchSubscriber()
    try:
        deadline = time.monotonic() + timeout_s
        while node.publisher_stats is None and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        result: dict[str, Any] = {}
        pub_stats = node.publisher_stats or {}
        for s in STREAMS:
            arr = node.arrival_s[s]
            span = arr[-1] - arr[0] if len(arr) > 1 else 0.0
            sent = pub_stats.get("sent", {}).get(s)
            result[s] = {
                "payload_bytes": node.bytes[s],
                "sent": sent,
                "received": len(arr),
                "achieved_rate_hz": round((len(arr) - 1) / span, 2) if span > 0 else None,
                "latency_ms": _stats_ms(node.latency_s[s]),
                "decode_ms": _stats_ms(node.decode_s[s]),
                "encode_ms": round(pub_stats["encode_ms"][s], 3) if pub_stats else None,
                "publish_call_ms": pub_stats.get("publish_ms", {}).get(s),
            }
        result["complete"] = node.publisher_stats is not None
        out_path.write_text(json.dumps(result, indent=2))
        return 0 if node.publisher_stats is not None else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def run(out_dir: Path, rate_hz: float = RATE_HZ, duration_s: float = DURATION_S) -> dict:
    """Run the two-process benchmark and write ``out_dir/bench_transport.json``.

    Raises:
        RuntimeError: a process failed or timed out (its output is in the message).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = localhost_env(base=dict(os.environ))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "sub.json"
        budget = 2 * duration_s + 60.0
        sub = subprocess.Popen([sys.executable, "-m", "vla_common.bench_transport", "sub", "--out", str(raw),
                                "--timeout", str(budget)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        pub = subprocess.Popen([sys.executable, "-m", "vla_common.bench_transport", "pub",
                                "--rate", str(rate_hz), "--duration", str(duration_s)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            sub_out, _ = sub.communicate(timeout=budget + 30)
            pub_out, _ = pub.communicate(timeout=30)
        except subprocess.TimeoutExpired as exc:
            for p in (sub, pub):
                p.kill()
            raise RuntimeError("transport benchmark processes timed out") from exc
        if sub.returncode != 0 or pub.returncode != 0 or not raw.exists():
            raise RuntimeError(f"transport benchmark failed (sub {sub.returncode}, pub {pub.returncode}):\n"
                               f"--- sub\n{sub_out[-2000:]}\n--- pub\n{pub_out[-2000:]}")
        streams = json.loads(raw.read_text())
    result = {
        "name": "transport",
        "what": "rclpy Image 640x480 rgb8 (SENSOR_QOS) and PointCloud2 20k points x (xyz, rgb, 256 float32 "
                "features) (RELIABLE_QOS) between two processes; latency = receive wall time - header stamp",
        "target_rate_hz": rate_hz,
        "duration_s_per_stream": duration_s,
        "image": streams["image"],
        "cloud": streams["cloud"],
        "env": {"rmw": env.get("RMW_IMPLEMENTATION"), "dds_profile": "loopback-only (SHM + UDP 127.0.0.1)",
                "python": platform.python_version(), "machine": platform.machine(),
                "cpu_count": os.cpu_count()},
    }
    (out_dir / "bench_transport.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_common.bench_transport run|pub|sub``."""
    ap = argparse.ArgumentParser(prog="python -m vla_common.bench_transport")
    ap.add_argument("role", choices=["run", "pub", "sub"])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--rate", type=float, default=RATE_HZ)
    ap.add_argument("--duration", type=float, default=DURATION_S)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--settle", type=float, default=1.0)
    args = ap.parse_args(argv)
    if args.role == "pub":
        return _publisher(args.rate, args.duration, args.settle)
    if args.role == "sub":
        return _subscriber(args.out, args.timeout)
    print(json.dumps(run(args.out, args.rate, args.duration), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
