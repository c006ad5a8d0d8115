# SPDX-License-Identifier: Apache-2.0
"""The perception node: three RGB-D cameras -> /vla/feature_cloud (PointCloud2 x y z rgb f0..fD-1).

A thin rclpy adapter around :class:`vla_perception.sources.RosCameraSource` (stamp
synchronisation) and :class:`vla_perception.pipeline.PerceptionPipeline` (CLIP + SR §3.2 fusion).
It subscribes each camera's realsense2_camera topics (``<prefix>/<name>/color/image_raw``,
``.../aligned_depth_to_color/image_raw``, ``.../color/camera_info``) with sensor QoS, publishes a
cloud at ``publish_rate_hz`` (0 = only on request) and whenever a ``std_msgs/Empty`` arrives on
``/vla/perception/request``, and reports ``cloud_published`` (timings, points, dropped views) and
``view_dropped`` events on ``/vla/status``. When no camera delivers a single frame within
``silent_after_s`` of a cloud request (node clock: simulated time in the sim), no cloud newer than
the request can be made: it reports ``cameras_silent`` once for that request (fields ``cameras``,
``seconds`` since each one's last frame or null, ``waited_s``), and the policy ends the task with
that reason instead of waiting out its cloud timeout. Camera extrinsics come from the rig calibration YAML
(``rig_calibration``) and, where ``tf2_ros`` is installed (a ROS machine), are replaced by the
``world -> <camera>_color_optical_frame`` transforms from /tf_static as they arrive.

``camera_source: pyrealsense2`` reads the three RealSense devices directly through pyrealsense2
instead (no realsense2_camera driver; one device per camera by the ``serial`` numbers in the rig
YAML, :func:`vla_perception.sources.realsense_source_from_rig`); the rest of the node is the same.

Run: ``perception_node --ros-args --params-file config/perception.yaml``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Empty

from vla_common import conversions as conv
from vla_common import topics
from vla_common.node_runner import destroy_entities, spin_node
from vla_common.qos import RELIABLE_QOS, SENSOR_QOS
from vla_common.ros_status import StatusPublisher
from vla_perception.fusion import FusionConfig, NoUsableViewError
from vla_perception.pipeline import PerceptionConfig, PerceptionPipeline
from vla_perception.sources import (
    RosCameraSource,
    load_rig_extrinsics,
    realsense_source_from_rig,
    realsense_topics,
)


def resolve_config_path(path: str) -> Path:
    """An absolute path, or a relative one (``config/rig_sim.yaml``) found where config lives.

    Relative paths are looked up next to the config directory (:func:`vla_common.graph.config_dir`:
    $VLA_CONFIG_DIR, the checkout's or the installed package's), then under the cwd.
    """
    from vla_common.graph import config_dir

    p = Path(path)
    if p.is_absolute():
        return p
    roots = [Path(os.environ["VLA_CONFIG_DIR"]).parent] if "VLA_CONFIG_DIR" in os.environ else []
    try:
        roots.append(config_dir().parent)
    except FileNotFoundError:
        pass
    roots.append(Path.cwd())
    for root in roots:
        if (root / p).is_file():
            return root / p
    raise FileNotFoundError(f"rig calibration {path!r} not found under {[str(r) for r in roots]}; pass an "
                            "absolute path in the rig_calibration parameter")


class PerceptionNode(LifecycleNode):
    """Synchronise cameras, fuse CLIP features, publish the feature cloud (module docstring).

    A lifecycle (managed) node: ``configure`` opens the camera source and loads CLIP (a missing model
    or rig file fails the transition, naming it), ``activate`` starts publishing clouds,
    ``deactivate`` stops publishing (the cameras stay open), ``cleanup`` closes the source. With
    ``autostart`` (default true, what ``vla launch`` uses) it configures and activates itself at
    start, and a failed configure fails the start; ``autostart:=false`` leaves it to a lifecycle
    manager (``/perception/change_state``).
    """

    def __init__(self, node_name: str = "perception") -> None:
        super().__init__(node_name)
        defaults = FusionConfig()
        self.declare_parameter("autostart", True)
        self.declare_parameter("cameras", ["top", "left", "right"])
        self.declare_parameter("camera_prefix", "/cameras")
        self.declare_parameter("rig_calibration", "config/rig_sim.yaml")
        self.declare_parameter("camera_source", "topics")  # topics (realsense2_camera) | pyrealsense2
        self.declare_parameter("realsense_size", [640, 480])
        self.declare_parameter("realsense_fps", 30)
        self.declare_parameter("sync_slop_s", 0.05)
        self.declare_parameter("partial_after_s", 1.0)
        self.declare_parameter("silent_after_s", 3.0)
        self.declare_parameter("publish_rate_hz", 1.0)
        self.declare_parameter("frame_id", "world")
        self.declare_parameter("use_tf_static", True)
        self.declare_parameter("clip_model", "compact")
        self.declare_parameter("clip_pretrained", "")
        self.declare_parameter("clip_readout", "")
        self.declare_parameter("device", "cpu")
        self.declare_parameter("threads", 0)
        self.declare_parameter("overlap_geometry", True)
        for name in FusionConfig.__dataclass_fields__:
            value = getattr(defaults, name)
            self.declare_parameter(f"fusion.{name}", list(value) if isinstance(value, tuple) else value)
        self._active = False
        self._entities: list = []
        self.source = None
        self._configure_error = ""
        self.cloud_pub = self.create_publisher(PointCloud2, topics.FEATURE_CLOUD, RELIABLE_QOS)
        self._status_out = StatusPublisher(self, self.get_name(), log=False)
        self.status_pub = self._status_out.pub
        if self.get_parameter("autostart").value:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise RuntimeError(f"perception could not configure: {self._configure_error}")
            self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the camera source, load CLIP, subscribe (class docstring)."""
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 - a failed configure names the cause and stays unconfigured
            self._configure_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {self._configure_error}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Publish feature clouds from now on."""
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop publishing clouds (requests are ignored until activated again)."""
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the camera source and drop the subscriptions and timers."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close everything."""
        self._active = False
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        destroy_entities(self, self._entities)
        if self.source is not None and hasattr(self.source, "close"):
            self.source.close()
        self.source = None

    def _configure(self) -> None:
        gp = self.get_parameter
        self.cameras = list(gp("cameras").value)
        self.frame_id = gp("frame_id").value
        self.rate_hz = float(gp("publish_rate_hz").value)
        self.partial_after_s = float(gp("partial_after_s").value)
        self.silent_after_s = float(gp("silent_after_s").value)
        if not self.silent_after_s > 0:
            raise ValueError(f"parameter silent_after_s must be > 0, got {self.silent_after_s}")
        fusion = FusionConfig.from_dict({n: gp(f"fusion.{n}").value
                                         for n in FusionConfig.__dataclass_fields__})
        cfg = PerceptionConfig(clip_model=gp("clip_model").value,
                               clip_pretrained=gp("clip_pretrained").value or None,
                               clip_readout=gp("clip_readout").value or None, device=gp("device").value,
                               threads=int(gp("threads").value),
                               overlap_geometry=bool(gp("overlap_geometry").value), fusion=fusion)
        rig_path = resolve_config_path(gp("rig_calibration").value)
        self.camera_source = gp("camera_source").value
        if self.camera_source == "pyrealsense2":
            w, h = (int(v) for v in gp("realsense_size").value)
            fps = int(gp("realsense_fps").value)
            self.source = realsense_source_from_rig(rig_path, self.cameras, w, h, fps)
        elif self.camera_source == "topics":
            self.source = RosCameraSource(self.cameras, load_rig_extrinsics(rig_path),
                                          float(gp("sync_slop_s").value))
        else:
            raise ValueError(f"parameter camera_source must be 'topics' or 'pyrealsense2', "
                             f"got {self.camera_source!r}")
        self.pipeline = PerceptionPipeline(cfg)

        prefix = gp("camera_prefix").value
        sub, keep = self.create_subscription, self._entities.append
        for cam in self.cameras if self.camera_source == "topics" else []:
            cam_topics = realsense_topics(cam, prefix)
            keep(sub(Image, cam_topics["color"], lambda m, c=cam: self._on_color(c, m), SENSOR_QOS))
            keep(sub(Image, cam_topics["depth"], lambda m, c=cam: self._on_depth(c, m), SENSOR_QOS))
            keep(sub(CameraInfo, cam_topics["info"], lambda m, c=cam: self._on_info(c, m), SENSOR_QOS))
        keep(sub(Empty, topics.PERCEPTION_REQUEST, self._on_request, RELIABLE_QOS))
        # Extrinsics from /tf_static where tf2_ros exists (a ROS install); the rig YAML otherwise.
        self._tf_buffer = None
        self._tf_pending = set(self.cameras) if gp("use_tf_static").value else set()
        if self._tf_pending:
            try:
                from tf2_ros import Buffer, TransformListener
            except ImportError:
                self._tf_pending = set()
                self.get_logger().info("tf2_ros is not installed: camera extrinsics from the rig "
                                       "calibration YAML")
            else:
                self._tf_buffer = Buffer()
                self._tf_listener = TransformListener(self._tf_buffer, self)
        self._requested = False
        self._watch_s: float | None = None  # node-clock time of a request no frame has followed yet
        self._silent_seen = False  # the silence held at the last check (confirmed at the next one)
        self._last_frame_s: dict[str, float] = {}  # node-clock arrival of each camera's last frame
        self._due = self.rate_hz > 0
        self._last_set_time = time.monotonic()
        self._n_published = 0
        if self.rate_hz > 0:
            keep(self.create_timer(1.0 / self.rate_hz, self._on_rate))
        keep(self.create_timer(0.05, self._maybe_publish))
        self.get_logger().info(f"perception: cameras {self.cameras} from {rig_path}, "
                               f"CLIP {self.pipeline.clip.source} "
                               f"(D={self.pipeline.clip.dim}), rate {self.rate_hz} Hz")

    # ------------------------------------------------------------------ inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_color(self, cam: str, msg: Image) -> None:
        self._last_frame_s[cam] = self._now()
        try:
            self.source.add_color(cam, conv.time_to_s(msg.header.stamp), conv.image_to_rgb(msg))
        except ValueError as exc:
            self._status("view_dropped", "warn", f"camera {cam}: bad colour image: {exc}", camera=cam)

    def _on_depth(self, cam: str, msg: Image) -> None:
        self._last_frame_s[cam] = self._now()
        try:
            self.source.add_depth(cam, conv.time_to_s(msg.header.stamp), conv.depth_image_to_metres(msg))
        except ValueError as exc:
            self._status("view_dropped", "warn", f"camera {cam}: bad depth image: {exc}", camera=cam)

    def _on_info(self, cam: str, msg: CameraInfo) -> None:
        try:
            self.source.set_info(cam, conv.camera_info_to_intrinsics(msg))
        except ValueError as exc:
            self._status("view_dropped", "warn", f"camera {cam}: bad camera_info: {exc}", camera=cam)

    def _on_request(self, _msg: Empty) -> None:
        self._requested = True
        if self._watch_s is None:  # silence counts from the first request no frame has followed
            self._watch_s = self._now()

    def _check_silent(self) -> None:
        """Report ``cameras_silent`` when no camera sent a frame within ``silent_after_s`` of a request.

        Without a frame after the request no cloud stamped after it can exist, so the requester
        (the policy) would only wait out its own timeout. One report per watched request; a frame
        from any camera ends the watch. Times from the future (the clock went back: the simulator
        restarted) count as no frame. The silence must hold at two checks in a row: frames that
        queued up while this node was busy (making a cloud, or not scheduled) are handed to their
        callbacks after the first check and end the watch before the second.
        """
        if self._watch_s is None:
            return
        now = self._now()
        self._watch_s = min(self._watch_s, now)
        if any(self._watch_s <= t <= now for t in self._last_frame_s.values()):
            self._watch_s, self._silent_seen = None, False  # a camera delivered since the request
            return
        waited = now - self._watch_s
        if waited < self.silent_after_s:
            return
        if not self._silent_seen:
            self._silent_seen = True
            return
        self._watch_s, self._silent_seen = None, False
        ages = {c: (now - t if (t := self._last_frame_s.get(c)) is not None and t <= now else None)
                for c in self.cameras}
        how = ", ".join(f"{c}: {'no frame yet' if a is None else f'last frame {a:.1f} s ago'}"
                        for c, a in ages.items())
        self._status("cameras_silent", "error",
                     f"no frame from any camera ({how}) in the {waited:.1f} s since a cloud was requested; "
                     "no feature cloud can be made (camera drivers, cables, topics?)",
                     cameras=list(self.cameras),
                     seconds={c: None if a is None else round(a, 2) for c, a in ages.items()},
                     waited_s=round(waited, 2))

    def _on_rate(self) -> None:
        self._due = True

    # ------------------------------------------------------------------ output
    def _status(self, event: str, level: str, detail: str, **fields) -> None:
        self._status_out(event, level, detail, **fields)

    def _lookup_tf(self) -> None:
        """Replace rig-YAML extrinsics with /tf_static ones as they become available (tf2 only)."""
        from rclpy.time import Time

        from vla_common.transforms import pose_to_matrix

        for cam in list(self._tf_pending):
            frame = f"{cam}_color_optical_frame"
            if not self._tf_buffer.can_transform(self.frame_id, frame, Time()):
                continue
            tf = self._tf_buffer.lookup_transform(self.frame_id, frame, Time()).transform
            T = pose_to_matrix([tf.translation.x, tf.translation.y, tf.translation.z],
                               [tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w])
            self.source.set_extrinsics(cam, T)
            self._tf_pending.discard(cam)
            self.get_logger().info(f"extrinsics of {cam} from /tf_static ({self.frame_id} <- {frame})")

    def _maybe_publish(self) -> None:
        if not self._active:
            return
        self._check_silent()
        if self._tf_pending and self._tf_buffer is not None:
            self._lookup_tf()
        if not (self._due or self._requested):
            return
        frames = self.source.read()
        if not frames and time.monotonic() - self._last_set_time > self.partial_after_s:
            frames = self.source.read(allow_partial=True)
        if not frames:
            return
        if self.camera_source != "topics":  # read directly (pyrealsense2): no per-message callbacks
            self._last_frame_s.update({f.name: self._now() for f in frames})
        self._last_set_time = time.monotonic()
        self._due = False
        self._requested = False
        missing = [f"{c}: {why}" for c, why in self.source.missing.items()]
        try:
            cloud = self.pipeline.process(frames)
        except NoUsableViewError as exc:
            self._status("view_dropped", "error", f"no cloud: {exc}", dropped_views=missing + [str(exc)])
            return
        dropped = missing + cloud.dropped_views
        for d in dropped:
            self._status("view_dropped", "warn", f"view dropped: {d}", camera=d.split(":")[0], reason=d)
        stamp = max(f.stamp_s for f in frames)
        self.cloud_pub.publish(conv.numpy_to_pointcloud2(cloud.xyz, cloud.rgb, cloud.features,
                                                         self.frame_id, stamp))
        self._n_published += 1
        t = self.pipeline.last_timings_ms
        self._status("cloud_published", "info",
                     f"feature cloud {len(cloud)} points x {cloud.features.shape[1]} features from "
                     f"{len(frames) - len(cloud.dropped_views)}/{len(self.cameras)} views in "
                     f"{t.get('total', 0):.0f} ms",
                     n_points=len(cloud), dim=int(cloud.features.shape[1]), stamp_s=stamp, timings_ms=t,
                     dropped_views=dropped)


def main(args: list[str] | None = None) -> None:
    """Run the perception node until shutdown."""
    spin_node(PerceptionNode, args)


if __name__ == "__main__":
    main()
