# SPDX-License-Identifier: Apache-2.0
"""numpy <-> ROS message conversions: exact round trips, hand-built messages, malformed input."""

from __future__ import annotations

import array
import math

import numpy as np
import pytest

conv = pytest.importorskip("vla_common.conversions")
from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import Pose  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField  # noqa: E402

from vla_common.camera import CameraIntrinsics  # noqa: E402
from vla_common.transforms import look_at, pose_to_matrix  # noqa: E402

RNG = np.random.default_rng(0)


def _random_image(encoding: str, h: int = 7, w: int = 5) -> np.ndarray:
    kind, c = conv.IMAGE_ENCODINGS[encoding]
    shape = (h, w) if c == 1 else (h, w, c)
    if kind.startswith("f"):
        return RNG.normal(size=shape).astype(kind)
    info = np.iinfo(kind)
    return RNG.integers(info.min, info.max, size=shape, endpoint=True).astype(kind)


@pytest.mark.parametrize("encoding", sorted(conv.IMAGE_ENCODINGS))
def test_image_round_trip_exact(encoding):
    img = _random_image(encoding)
    msg = conv.numpy_to_image(img, encoding, frame_id="cam", stamp_s=12.25)
    assert msg.encoding == encoding and msg.is_bigendian == 0
    assert msg.step == img.shape[1] * img.itemsize * (1 if img.ndim == 2 else img.shape[2])
    out = conv.image_to_numpy(msg)
    assert out.dtype == img.dtype and out.shape == img.shape
    assert np.array_equal(out, img, equal_nan=img.dtype.kind == "f")
    assert msg.header.frame_id == "cam" and conv.time_to_s(msg.header.stamp) == 12.25


def _padded(img: np.ndarray, encoding: str, pad: int, bigendian: bool = False) -> Image:
    """An Image with ``pad`` junk bytes after each row (as some drivers send)."""
    h, w = img.shape[:2]
    dt = img.dtype.newbyteorder(">" if bigendian else "<")
    rows = np.ascontiguousarray(img.astype(dt)).view(np.uint8).reshape(h, -1)
    junk = np.full((h, pad), 0xAB, np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    return Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=data.shape[1],
                 data=array.array("B", data.tobytes()))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "16UC1", "32FC1", "mono8"])
@pytest.mark.parametrize("pad", [1, 3, 8])
def test_image_padded_step(encoding, pad):
    img = _random_image(encoding, h=6, w=9)
    out = conv.image_to_numpy(_padded(img, encoding, pad))
    assert np.array_equal(out, img)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_image_big_endian(encoding):
    img = _random_image(encoding)
    out = conv.image_to_numpy(_padded(img, encoding, 0, bigendian=True))
    assert out.dtype.isnative and np.array_equal(out, img)


def test_bgr_to_rgb_and_depth_helpers():
    rgb = _random_image("rgb8")
    bgr_msg = conv.numpy_to_image(rgb[:, :, ::-1].copy(), "bgr8")
    assert np.array_equal(conv.image_to_rgb(bgr_msg), rgb)
    depth = np.array([[0.0, 0.5], [1.234, 65.535]], dtype=np.float32)
    mm = conv.metres_to_depth_image(depth, "16UC1")
    assert conv.image_to_numpy(mm).tolist() == [[0, 500], [1234, 65535]]
    assert np.allclose(conv.depth_image_to_metres(mm), depth, atol=1e-6)
    assert np.array_equal(conv.depth_image_to_metres(conv.metres_to_depth_image(depth)), depth)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda m: setattr(m, "step", m.step - 1), "step"),
        (lambda m: setattr(m, "data", m.data[:-1]), "data"),
        (lambda m: setattr(m, "data", m.data + array.array("B", [0])), "data"),
        (lambda m: setattr(m, "encoding", "yuv422_yuy2"), "encoding"),
        (lambda m: setattr(m, "height", 0), "height"),
    ],
)
def test_malformed_image_names_the_field(mutate, field):
    msg = conv.numpy_to_image(_random_image("rgb8"), "rgb8")
    mutate(msg)
    with pytest.raises(ValueError, match=field):
        conv.image_to_numpy(msg)


def test_numpy_to_image_rejects_wrong_dtype_and_shape():
    with pytest.raises(ValueError, match="uint16"):
        conv.numpy_to_image(np.zeros((4, 4), np.float32), "16UC1")
    with pytest.raises(ValueError, match="shape"):
        conv.numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="not supported"):
        conv.numpy_to_image(np.zeros((4, 4), np.uint8), "jpeg")


def test_pointcloud_round_trip_exact():
    n, d = 1000, 17
    xyz = RNG.normal(size=(n, 3)).astype(np.float32)
    xyz[5] = np.nan
    rgb = RNG.integers(0, 256, size=(n, 3)).astype(np.uint8)
    feats = RNG.normal(size=(n, d)).astype(np.float32)
    msg = conv.numpy_to_pointcloud2(xyz, rgb, feats, frame_id="world", stamp_s=3.5)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"] + [f"f{i}" for i in range(d)]
    assert msg.point_step == 4 * (4 + d) and msg.row_step == msg.point_step * n and not msg.is_dense
    x2, rgb2, f2 = conv.pointcloud2_to_numpy(msg)
    assert np.array_equal(x2, xyz, equal_nan=True)
    assert np.array_equal(rgb2, rgb) and np.array_equal(f2, feats)
    # optional parts absent
    x3, rgb3, f3 = conv.pointcloud2_to_numpy(conv.numpy_to_pointcloud2(xyz))
    assert rgb3 is None and f3 is None and np.array_equal(x3, xyz, equal_nan=True)
    assert conv.pointcloud2_to_numpy(conv.numpy_to_pointcloud2(np.zeros((0, 3))))[0].shape == (0, 3)


def test_pointcloud_extra_fields():
    xyz = RNG.normal(size=(50, 3)).astype(np.float32)
    conf = RNG.random(50).astype(np.float32)
    feats = RNG.normal(size=(50, 4)).astype(np.float32)
    msg = conv.numpy_to_pointcloud2(xyz, None, feats, extra_fields={"confidence": conf})
    assert [f.name for f in msg.fields][:5] == ["x", "y", "z", "confidence", "f0"]
    assert np.array_equal(conv.read_pointcloud2_field(msg, "confidence"), conf)
    assert np.array_equal(conv.pointcloud2_to_numpy(msg)[2], feats)
    with pytest.raises(ValueError, match="clashes"):
        conv.numpy_to_pointcloud2(xyz, extra_fields={"f7": conf})
    with pytest.raises(ValueError, match=r"extra_fields\['confidence'\] must have shape \(50,\)"):
        conv.numpy_to_pointcloud2(xyz, extra_fields={"confidence": conf[:10]})
    with pytest.raises(ValueError, match="no field 'intensity'"):
        conv.read_pointcloud2_field(msg, "intensity")


def test_packed_rgb_matches_pcl_bits():
    packed = conv.pack_rgb(np.array([[255, 0, 0], [1, 2, 3]], np.uint8))
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0xFF0000, 0x010203]


def test_hand_built_pointcloud_with_standard_fields():
    """An organised 2x3 cloud as another driver might send it: float64 xyz, padding between fields,
    a uint32 rgb, uint16 intensity, non-consecutive features and row padding in row_step."""
    h, w = 2, 3
    dt = np.dtype({"names": ["x", "y", "z", "rgb", "intensity", "f1", "f0"],
                   "formats": ["<f8", "<f8", "<f8", "<u4", "<u2", "<f4", "<f4"],
                   "offsets": [0, 8, 16, 28, 32, 40, 48], "itemsize": 56})
    pts = np.zeros(h * w, dtype=dt)
    pts["x"], pts["y"], pts["z"] = np.arange(6) * 1.5, np.arange(6) - 2.0, 0.25
    pts["rgb"] = [0x112233, 0xFF0000, 0x00FF00, 0x0000FF, 0, 0xFFFFFF]
    pts["intensity"] = 7
    pts["f0"], pts["f1"] = np.arange(6) * 0.5, -np.arange(6)
    row_pad = 5
    rows = np.concatenate([pts.view(np.uint8).reshape(h, w * 56), np.zeros((h, row_pad), np.uint8)], axis=1)
    fields = [PointField(name=n, offset=o, datatype=t, count=1) for n, o, t in [
        ("x", 0, PointField.FLOAT64), ("y", 8, PointField.FLOAT64), ("z", 16, PointField.FLOAT64),
        ("rgb", 28, PointField.UINT32), ("intensity", 32, PointField.UINT16),
        ("f1", 40, PointField.FLOAT32), ("f0", 48, PointField.FLOAT32)]]
    msg = PointCloud2(height=h, width=w, fields=fields, is_bigendian=False, point_step=56,
                      row_step=w * 56 + row_pad, data=array.array("B", rows.tobytes()), is_dense=True)
    xyz, rgb, feats = conv.pointcloud2_to_numpy(msg)
    assert xyz.dtype == np.float32 and xyz.shape == (6, 3)
    assert np.array_equal(xyz[:, 0], np.arange(6) * 1.5) and np.array_equal(xyz[:, 1], np.arange(6) - 2.0)
    assert rgb.tolist() == [[0x11, 0x22, 0x33], [255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0], [255] * 3]
    assert np.array_equal(feats, np.stack([np.arange(6) * 0.5, -np.arange(6)], axis=1))
    assert conv.read_pointcloud2_field(msg, "intensity").tolist() == [7] * 6


def test_big_endian_pointcloud():
    dt = np.dtype([("x", ">f4"), ("y", ">f4"), ("z", ">f4")])
    pts = np.array([(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)], dtype=dt)
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate("xyz")]
    msg = PointCloud2(height=1, width=2, fields=fields, is_bigendian=True, point_step=12, row_step=24,
                      data=array.array("B", pts.tobytes()))
    assert conv.pointcloud2_to_numpy(msg)[0].tolist() == [[1, 2, 3], [4, 5, 6]]


def _cloud() -> PointCloud2:
    return conv.numpy_to_pointcloud2(np.ones((10, 3)), np.zeros((10, 3), np.uint8), np.ones((10, 4)))


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda m: setattr(m, "data", m.data[:-4]), "data"),
        (lambda m: setattr(m, "row_step", m.row_step - 1), "row_step"),
        (lambda m: setattr(m, "point_step", 8), "point_step|row_step"),
        (lambda m: setattr(m, "fields", [f for f in m.fields if f.name != "y"]), "'y'"),
        (lambda m: setattr(m.fields[0], "datatype", 42), "'x'.*datatype"),
        (lambda m: setattr(m.fields[-1], "offset", m.point_step - 2), "f3"),
        (lambda m: setattr(m, "fields", [f for f in m.fields if f.name != "f1"]), "f1"),
    ],
)
def test_malformed_pointcloud_names_the_field(mutate, field):
    msg = _cloud()
    mutate(msg)
    with pytest.raises(ValueError, match=field):
        conv.pointcloud2_to_numpy(msg)


def test_pointcloud_writer_rejects_bad_shapes():
    with pytest.raises(ValueError, match="xyz"):
        conv.numpy_to_pointcloud2(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="features"):
        conv.numpy_to_pointcloud2(np.zeros((5, 3)), features=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="rgb"):
        conv.numpy_to_pointcloud2(np.zeros((5, 3)), rgb=np.zeros((5, 3), np.float32))


def test_pose_round_trips():
    T = look_at([0.4, -0.3, 0.8], [0.1, 0.2, 0.0])
    msg = conv.matrix_to_pose_stamped(T, "world", 2.0)
    assert msg.header.frame_id == "world"
    assert np.allclose(conv.pose_stamped_to_matrix(msg), T, atol=1e-12)
    Ts = np.stack([pose_to_matrix(RNG.normal(size=3), RNG.normal(size=4)) for _ in range(20)])
    assert np.allclose(conv.pose_array_to_matrices(conv.matrices_to_pose_array(Ts)), Ts, atol=1e-12)
    assert conv.pose_array_to_matrices(conv.matrices_to_pose_array(np.zeros((0, 4, 4)))).shape == (0, 4, 4)


def test_bad_poses_raise():
    zero_q = Pose()
    zero_q.orientation.w = 0.0
    with pytest.raises(ValueError, match="orientation"):
        conv.pose_msg_to_matrix(zero_q)
    p = Pose()
    p.orientation.w = 1.0
    p.position.x = math.nan
    with pytest.raises(ValueError, match="position"):
        conv.pose_msg_to_matrix(p)
    bad = np.eye(4)
    bad[0, 0] = 2.0
    with pytest.raises(ValueError, match="rotation"):
        conv.matrix_to_pose_msg(bad)


def test_joint_state():
    names = ["a", "b", "c"]
    msg = conv.numpy_to_joint_state(names, [0.1, -0.2, 0.3], velocities=[1.0, 2.0, 3.0], stamp_s=1.0)
    got_names, q = conv.joint_state_to_numpy(msg)
    assert got_names == names and q.tolist() == [0.1, -0.2, 0.3]
    assert conv.joint_state_to_numpy(msg, ["c", "a"])[1].tolist() == [0.3, 0.1]
    with pytest.raises(ValueError, match="lacks joints.*'d'"):
        conv.joint_state_to_numpy(msg, ["a", "d"])
    with pytest.raises(ValueError, match="position"):
        conv.joint_state_to_numpy(JointState(name=["a", "b"], position=[1.0]))
    with pytest.raises(ValueError, match="velocity"):
        conv.numpy_to_joint_state(names, [0, 0, 0], velocities=[1.0])


def test_camera_info_and_time():
    intr = CameraIntrinsics.from_fov(640, 480, 58.0)
    msg = conv.intrinsics_to_camera_info(intr, "top_color_optical_frame", 1.0)
    assert conv.camera_info_to_intrinsics(msg) == intr
    with pytest.raises(ValueError, match="CameraInfo.k"):
        conv.camera_info_to_intrinsics(CameraInfo(width=10, height=10))
    for t in (0.0, 1.5, 1234567.000000001, 99.999999999):
        assert abs(conv.time_to_s(conv.s_to_time(t)) - t) < 1e-9
    assert conv.s_to_time(0.9999999999).sec == 1  # nanosecond rounding carries into seconds
    assert conv.time_to_s(Time(sec=3, nanosec=500_000_000)) == 3.5
    with pytest.raises(ValueError, match="stamp"):
        conv.s_to_time(-1.0)
