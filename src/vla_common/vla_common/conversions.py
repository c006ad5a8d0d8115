# SPDX-License-Identifier: Apache-2.0
"""numpy <-> ROS 2 message conversions (Image, PointCloud2, Pose, JointState, CameraInfo, Time).

The pip-installed ROS 2 wheels have no ``cv_bridge`` and no ``sensor_msgs_py``, so this module is
the project's replacement for both. Every conversion is vectorised (``np.frombuffer`` views and
structured slices, no Python loop over pixels or points): a 20k-point cloud with 256 float32
feature channels converts in milliseconds.

Readers validate what they get and raise ``ValueError`` naming the offending field (``step``,
``data``, ``encoding``, ``fields``...), because a malformed message from another process must
never turn into a silently wrong array.

Layouts written here:

* Image: row-major, ``step = width * channels * itemsize`` (readers honour any larger ``step``),
  little-endian (``is_bigendian = 0``; readers also accept big-endian data).
* PointCloud2: ``height = 1``, fields ``x y z`` (FLOAT32), optional ``rgb`` (FLOAT32 holding the
  packed ``0x00RRGGBB`` uint32, as PCL does) and ``f0 .. f{D-1}`` (FLOAT32 feature channels).
  Readers accept any standard PointField layout (offsets, padding, ``row_step``, other types).
"""

from __future__ import annotations

import array
import math
import re
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseArray, PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField
from std_msgs.msg import Header

from vla_common.camera import CameraIntrinsics
from vla_common.transforms import matrix_to_quat, quat_to_matrix

# --------------------------------------------------------------------------------------------------
# Time and header
# --------------------------------------------------------------------------------------------------


def time_to_s(stamp: Time) -> float:
    """builtin_interfaces/Time -> seconds as float."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def s_to_time(t_s: float) -> Time:
    """Seconds (>= 0, finite) -> builtin_interfaces/Time (nanosecond resolution)."""
    t_s = float(t_s)
    if not math.isfinite(t_s) or t_s < 0.0:
        raise ValueError(f"stamp: time must be a finite number of seconds >= 0, got {t_s}")
    sec = int(math.floor(t_s))
    nanosec = int(round((t_s - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    if sec > 2**31 - 1:
        raise ValueError(f"stamp: {t_s} s does not fit builtin_interfaces/Time.sec (int32)")
    return Time(sec=sec, nanosec=nanosec)


def make_header(frame_id: str = "", stamp_s: float | None = None) -> Header:
    """A std_msgs/Header; ``stamp_s=None`` leaves the stamp at zero."""
    header = Header(frame_id=frame_id)
    if stamp_s is not None:
        header.stamp = s_to_time(stamp_s)
    return header


def _byte_array(buf: np.ndarray) -> array.array:
    """Numpy data -> array('B') as the generated message setters want (one copy)."""
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(buf)).cast("B"))
    return out


def _alloc_message_buffer(shape: tuple[int, ...], dtype: str) -> tuple[array.array, np.ndarray]:
    """A zeroed array('B') for ``msg.data`` plus a writable (shape, dtype) numpy view of it.

    Large payloads are then written once, straight into the message buffer.
    """
    dt = np.dtype(dtype)
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    data = array.array("B", b"\0") * n_bytes
    return data, np.frombuffer(data, dtype=dt).reshape(shape)


# --------------------------------------------------------------------------------------------------
# sensor_msgs/Image
# --------------------------------------------------------------------------------------------------

# encoding -> (numpy dtype without byte order, channels); names as in sensor_msgs/image_encodings.h
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4),
    "mono8": ("u1", 1), "mono16": ("u2", 1),
    "8UC1": ("u1", 1), "8UC3": ("u1", 3), "16UC1": ("u2", 1), "32FC1": ("f4", 1), "64FC1": ("f8", 1),
}


def image_to_numpy(msg: Image, copy: bool = False) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, C) array, or (H, W) for one-channel encodings.

    Channels stay in the message's order (``bgr8`` stays BGR; see :func:`image_to_rgb`). Row
    padding (``step`` larger than a row) is dropped; big-endian data is converted to native.

    Args:
        msg: the image message.
        copy: return an array that owns its memory; otherwise it may view ``msg.data``.

    Raises:
        ValueError: unknown ``encoding``, inconsistent ``step`` or ``data`` size, bad dimensions.
    """
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"Image.encoding {msg.encoding!r} is not supported; use one of "
                         f"{sorted(IMAGE_ENCODINGS)}")
    kind, channels = IMAGE_ENCODINGS[msg.encoding]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ValueError(f"Image.height/width must be positive, got {h}x{w}")
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"Image.step {step} is smaller than one row of {w} x {msg.encoding} pixels "
                         f"({row_bytes} bytes)")
    n_bytes = len(msg.data)
    if n_bytes != h * step:
        raise ValueError(f"Image.data has {n_bytes} bytes but height * step = {h} * {step} = {h * step}"
                         f" ({'truncated' if n_bytes < h * step else 'extra bytes'})")
    if step == row_bytes:
        out = np.frombuffer(msg.data, dtype=dtype, count=h * w * channels)
    else:  # padded rows: drop the padding, then reinterpret
        rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, step)[:, :row_bytes]
        out = np.ascontiguousarray(rows).view(dtype).reshape(-1)
        copy = False  # already a fresh array
    shape = (h, w) if channels == 1 else (h, w, channels)
    out = out.reshape(shape)
    if not dtype.isnative:
        return out.astype(dtype.newbyteorder("="))
    return out.copy() if copy else out


def numpy_to_image(img: np.ndarray, encoding: str, frame_id: str = "",
                   stamp_s: float | None = None) -> Image:
    """(H, W[, C]) array -> sensor_msgs/Image, unpadded, little-endian.

    Args:
        img: pixels; its dtype must match the encoding (uint8 for rgb8/bgr8, uint16 for 16UC1,
            float32 for 32FC1, ...) and its channel count too.
        encoding: one of :data:`IMAGE_ENCODINGS`.
        frame_id: header frame (an optical frame for cameras).
        stamp_s: header stamp in seconds; None leaves it at zero.

    Raises:
        ValueError: unknown encoding, or dtype/shape not matching it.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"encoding {encoding!r} is not supported; use one of {sorted(IMAGE_ENCODINGS)}")
    kind, channels = IMAGE_ENCODINGS[encoding]
    img = np.asarray(img)
    want = np.dtype(kind)
    if img.dtype.newbyteorder("=") != want.newbyteorder("="):
        raise ValueError(f"encoding {encoding} needs a {want} array, got {img.dtype}")
    if img.ndim == 3 and channels == 1 and img.shape[2] == 1:
        img = img[:, :, 0]
    expect_ndim = 2 if channels == 1 else 3
    if img.ndim != expect_ndim or (channels > 1 and img.shape[2] != channels):
        raise ValueError(f"encoding {encoding} needs shape (H, W{'' if channels == 1 else f', {channels}'}),"
                         f" got {img.shape}")
    h, w = img.shape[:2]
    le = img.astype(want.newbyteorder("<"), copy=False)
    msg = Image(check_fields=True, header=make_header(frame_id, stamp_s), height=h, width=w,
                encoding=encoding, is_bigendian=0, step=w * channels * want.itemsize)
    msg.data = _byte_array(le)
    return msg


def image_to_rgb(msg: Image) -> np.ndarray:
    """Colour image message (rgb8, bgr8, rgba8, bgra8) -> (H, W, 3) uint8 RGB."""
    img = image_to_numpy(msg)
    if msg.encoding == "rgb8":
        return img.copy()
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(img[:, :, ::-1])
    if msg.encoding == "rgba8":
        return np.ascontiguousarray(img[:, :, :3])
    if msg.encoding == "bgra8":
        return np.ascontiguousarray(img[:, :, 2::-1])
    raise ValueError(f"Image.encoding {msg.encoding!r} is not a colour encoding (rgb8, bgr8, rgba8, bgra8)")


def depth_image_to_metres(msg: Image) -> np.ndarray:
    """Depth image -> (H, W) float32 metres.

    Accepts 16UC1/mono16 in millimetres (as RealSense publishes) or 32FC1 in metres; missing
    measurements stay 0 (or NaN for 32FC1).
    """
    img = image_to_numpy(msg)
    if msg.encoding in ("16UC1", "mono16"):
        return img.astype(np.float32) * np.float32(0.001)
    if msg.encoding == "32FC1":
        return img.astype(np.float32, copy=True)
    raise ValueError(f"Image.encoding {msg.encoding!r} is not a depth encoding (16UC1 mm, 32FC1 m)")


def metres_to_depth_image(depth_m: np.ndarray, encoding: str = "32FC1", frame_id: str = "",
                          stamp_s: float | None = None) -> Image:
    """(H, W) depth in metres -> 32FC1 (metres) or 16UC1 (millimetres, NaN/negative -> 0)."""
    depth_m = np.asarray(depth_m)
    if encoding == "32FC1":
        return numpy_to_image(depth_m.astype(np.float32, copy=False), "32FC1", frame_id, stamp_s)
    if encoding == "16UC1":
        mm = np.nan_to_num(np.asarray(depth_m, dtype=np.float64) * 1000.0, nan=0.0, posinf=0.0)
        mm = np.clip(np.rint(mm), 0, 65535).astype(np.uint16)
        return numpy_to_image(mm, "16UC1", frame_id, stamp_s)
    raise ValueError(f"depth encoding must be 32FC1 or 16UC1, got {encoding!r}")


# --------------------------------------------------------------------------------------------------
# sensor_msgs/PointCloud2
# --------------------------------------------------------------------------------------------------

# PointField datatype -> numpy kind (sensor_msgs/PointField constants)
POINTFIELD_DTYPES: dict[int, str] = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
    PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}
_FEATURE_RE = re.compile(r"^f(\d+)$")


def _cloud_layout(has_rgb: bool, extra: Sequence[str], n_features: int) -> list[tuple[str, int]]:
    """(name, byte offset) of the float32 fields this module writes."""
    names = ["x", "y", "z"] + (["rgb"] if has_rgb else []) + list(extra)
    names += [f"f{i}" for i in range(n_features)]
    return [(name, 4 * i) for i, name in enumerate(names)]


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 -> (N,) float32 whose bits are the uint32 ``0x00RRGGBB`` (PCL's ``rgb``)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 2 or rgb.shape[1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (N, 3) uint8, got {rgb.shape} {rgb.dtype}")
    packed = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]
    return packed.astype("<u4").view("<f4")


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """(N,) float32 or uint32 packed ``0x00RRGGBB`` -> (N, 3) uint8."""
    bits = np.ascontiguousarray(packed).view(np.uint32) if packed.dtype.itemsize == 4 else packed
    bits = bits.astype(np.uint32, copy=False)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=1).astype(np.uint8)


def numpy_to_pointcloud2(xyz: np.ndarray, rgb: np.ndarray | None = None,
                         features: np.ndarray | None = None, frame_id: str = "world",
                         stamp_s: float | None = None,
                         extra_fields: dict[str, np.ndarray] | None = None) -> PointCloud2:
    """Points (+ colours, + scalar fields, + feature channels) -> an unordered sensor_msgs/PointCloud2.

    Args:
        xyz: (N, 3) positions in metres (cast to float32).
        rgb: (N, 3) uint8 colours, written as PCL's packed float32 ``rgb`` field; None omits it.
        features: (N, D) feature channels, written as float32 fields ``f0 .. f{D-1}``.
        frame_id: header frame of the points.
        stamp_s: header stamp in seconds; None leaves it at zero.
        extra_fields: named (N,) per-point scalars (e.g. ``confidence``), written as float32 fields
            between ``rgb`` and the features; read back with :func:`read_pointcloud2_field`.

    Raises:
        ValueError: shapes that disagree or clashing field names, naming the argument.
    """
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must be (N, 3), got {xyz.shape}")
    n = xyz.shape[0]
    if rgb is not None and np.shape(rgb)[0] != n:
        raise ValueError(f"rgb has {np.shape(rgb)[0]} rows but xyz has {n}")
    if features is not None:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] != n:
            raise ValueError(f"features must be (N={n}, D), got {features.shape}")
    extra = dict(extra_fields or {})
    for name, values in extra.items():
        if name in ("x", "y", "z", "rgb", "rgba", "r", "g", "b") or _FEATURE_RE.match(name):
            raise ValueError(f"extra_fields name {name!r} clashes with a standard or feature field")
        if np.shape(values) != (n,):
            raise ValueError(f"extra_fields[{name!r}] must have shape ({n},), got {np.shape(values)}")
    n_feat = 0 if features is None else features.shape[1]
    layout = _cloud_layout(rgb is not None, list(extra), n_feat)
    cols = len(layout)
    data, buf = _alloc_message_buffer((n, cols), "<f4")  # (N, 3 + rgb + extra + D), float32 fields
    buf[:, :3] = xyz
    col = 3
    if rgb is not None:
        buf[:, 3] = pack_rgb(rgb)
        col = 4
    for values in extra.values():
        buf[:, col] = values
        col += 1
    if features is not None:
        buf[:, col:] = features
    # check_fields=True: the setter then keeps our array('B') instead of copying it again
    msg = PointCloud2(check_fields=True, header=make_header(frame_id, stamp_s), height=1, width=n,
                      is_bigendian=False, point_step=4 * cols, row_step=4 * cols * n,
                      is_dense=bool(np.isfinite(buf[:, :3]).all()))
    msg.fields = [PointField(name=name, offset=off, datatype=PointField.FLOAT32, count=1)
                  for name, off in layout]
    msg.data = data
    return msg


def _field_dtype(field: PointField, bigendian: bool) -> np.dtype:
    if field.datatype not in POINTFIELD_DTYPES:
        raise ValueError(f"PointCloud2.fields['{field.name}'].datatype {field.datatype} is not a "
                         f"standard PointField type (1..8)")
    return np.dtype(POINTFIELD_DTYPES[field.datatype]).newbyteorder(">" if bigendian else "<")


def _point_bytes(msg: PointCloud2) -> np.ndarray:
    """Validate the geometry of ``msg`` and return its points as an (N, point_step) uint8 array."""
    h, w = int(msg.height), int(msg.width)
    ps, rs = int(msg.point_step), int(msg.row_step)
    if ps <= 0:
        raise ValueError(f"PointCloud2.point_step must be positive, got {ps}")
    if rs < w * ps:
        raise ValueError(f"PointCloud2.row_step {rs} is smaller than width * point_step = {w} * {ps}")
    n_bytes = len(msg.data)
    if n_bytes != h * rs:
        raise ValueError(f"PointCloud2.data has {n_bytes} bytes but height * row_step = {h} * {rs} = "
                         f"{h * rs} ({'truncated' if n_bytes < h * rs else 'extra bytes'})")
    for f in msg.fields:
        size = _field_dtype(f, msg.is_bigendian).itemsize * max(int(f.count), 1)
        if f.offset + size > ps:
            raise ValueError(f"PointCloud2.fields['{f.name}'] (offset {f.offset}, {size} bytes) does not "
                             f"fit in point_step {ps}")
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if h * w == 0:
        return raw[:0].reshape(0, ps)
    rows = raw.reshape(h, rs)[:, : w * ps]
    return rows.reshape(h * w, ps)


def _read_block(points: np.ndarray, offset: int, dtype: np.dtype, count: int) -> np.ndarray:
    """(N, point_step) bytes -> (N, count) values of ``dtype`` starting at byte ``offset``."""
    n = points.shape[0]
    block = np.ascontiguousarray(points[:, offset: offset + dtype.itemsize * count])
    return block.view(dtype).reshape(n, count).astype(dtype.newbyteorder("="), copy=False)


def pointcloud2_fields(msg: PointCloud2) -> list[str]:
    """Names of the fields of a PointCloud2, in message order."""
    return [f.name for f in msg.fields]


def read_pointcloud2_field(msg: PointCloud2, name: str) -> np.ndarray:
    """One field of any PointCloud2 as an (N,) array (or (N, count) when ``count > 1``).

    Raises:
        ValueError: the field is missing, or the message geometry is inconsistent.
    """
    field = next((f for f in msg.fields if f.name == name), None)
    if field is None:
        raise ValueError(f"PointCloud2.fields has no field '{name}' (fields: {pointcloud2_fields(msg)})")
    pts = _point_bytes(msg)
    count = max(int(field.count), 1)
    out = _read_block(pts, int(field.offset), _field_dtype(field, msg.is_bigendian), count)
    return out[:, 0] if count == 1 else out


def _feature_fields(msg: PointCloud2) -> list[PointField]:
    feats = {}
    for f in msg.fields:
        m = _FEATURE_RE.match(f.name)
        if m:
            feats[int(m.group(1))] = f
    if feats and sorted(feats) != list(range(len(feats))):
        missing = sorted(set(range(max(feats) + 1)) - set(feats))
        raise ValueError(f"PointCloud2.fields: feature channels must be f0..f{max(feats)} without gaps; "
                         f"missing {[f'f{i}' for i in missing[:5]]}")
    return [feats[i] for i in range(len(feats))]


def pointcloud2_to_numpy(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Any PointCloud2 with ``x y z`` -> (xyz, rgb, features).

    Returns:
        xyz: (N, 3) float32 (N = height * width; NaN points are kept, as in the message).
        rgb: (N, 3) uint8 from a packed ``rgb``/``rgba`` field or separate ``r g b`` fields, else None.
        features: (N, D) float32 from fields ``f0 .. f{D-1}``, else None.

    Raises:
        ValueError: a missing ``x``/``y``/``z`` field, a non-standard datatype, fields that do not
            fit ``point_step``, or ``data`` whose size disagrees with ``height * row_step``.
    """
    names = {f.name: f for f in msg.fields}
    for axis in ("x", "y", "z"):
        if axis not in names:
            raise ValueError(f"PointCloud2.fields is missing field '{axis}' (fields: {list(names)})")
    pts = _point_bytes(msg)
    be = bool(msg.is_bigendian)
    fx, fy, fz = names["x"], names["y"], names["z"]
    dx = _field_dtype(fx, be)
    if (fy.offset == fx.offset + dx.itemsize and fz.offset == fy.offset + dx.itemsize
            and fy.datatype == fx.datatype == fz.datatype):
        xyz = _read_block(pts, fx.offset, dx, 3).astype(np.float32, copy=False)
    else:
        xyz = np.stack([_read_block(pts, f.offset, _field_dtype(f, be), 1)[:, 0]
                        for f in (fx, fy, fz)], axis=1).astype(np.float32)

    rgb = None
    packed = names.get("rgb") or names.get("rgba")
    if packed is not None:
        if packed.datatype not in (PointField.FLOAT32, PointField.UINT32, PointField.INT32):
            raise ValueError(f"PointCloud2.fields['{packed.name}'] must be a packed 4-byte colour "
                             f"(FLOAT32 or UINT32), got datatype {packed.datatype}")
        rgb = unpack_rgb(_read_block(pts, packed.offset, _field_dtype(packed, be), 1)[:, 0])
    elif {"r", "g", "b"} <= names.keys():
        rgb = np.stack([_read_block(pts, names[c].offset, _field_dtype(names[c], be), 1)[:, 0]
                        for c in "rgb"], axis=1).astype(np.uint8)

    features = None
    feats = _feature_fields(msg)
    if feats:
        d = len(feats)
        d0 = _field_dtype(feats[0], be)
        contiguous = all(f.datatype == feats[0].datatype and max(int(f.count), 1) == 1
                         and f.offset == feats[0].offset + i * d0.itemsize for i, f in enumerate(feats))
        if contiguous:  # the common case: one block of D consecutive values
            features = _read_block(pts, feats[0].offset, d0, d).astype(np.float32, copy=False)
        else:  # general layout: one vectorised column read per field
            features = np.empty((pts.shape[0], d), dtype=np.float32)
            for i, f in enumerate(feats):
                features[:, i] = _read_block(pts, f.offset, _field_dtype(f, be), 1)[:, 0]
    return xyz, rgb, features


# --------------------------------------------------------------------------------------------------
# geometry_msgs: Pose, PoseStamped, PoseArray
# --------------------------------------------------------------------------------------------------


def _check_transform(T: np.ndarray, what: str = "T") -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"{what} must be a finite (4, 4) matrix, got shape {T.shape}")
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        raise ValueError(f"{what}[:3, :3] is not a rotation matrix (R^T R != I or det < 0)")
    return T


def pose_msg_to_matrix(pose: Pose) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4) float64 transform (the quaternion is normalised).

    Raises:
        ValueError: non-finite position or a zero/non-finite orientation quaternion.
    """
    p, o = pose.position, pose.orientation
    xyz = np.array([p.x, p.y, p.z])
    q = np.array([o.x, o.y, o.z, o.w])
    if not np.all(np.isfinite(xyz)):
        raise ValueError(f"Pose.position must be finite, got {xyz.tolist()}")
    try:
        R = quat_to_matrix(q)
    except ValueError as exc:
        raise ValueError(f"Pose.orientation: {exc}") from exc
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, xyz
    return T


def matrix_to_pose_msg(T: np.ndarray) -> Pose:
    """(4, 4) rigid transform -> geometry_msgs/Pose (quaternion x y z w with w >= 0)."""
    T = _check_transform(T)
    q = matrix_to_quat(T[:3, :3])
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    o = pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q)
    return pose


def pose_stamped_to_matrix(msg: PoseStamped) -> np.ndarray:
    """geometry_msgs/PoseStamped -> (4, 4) transform T_frame_pose (frame = ``msg.header.frame_id``)."""
    return pose_msg_to_matrix(msg.pose)


def matrix_to_pose_stamped(T: np.ndarray, frame_id: str = "world",
                           stamp_s: float | None = None) -> PoseStamped:
    """(4, 4) transform -> geometry_msgs/PoseStamped in ``frame_id``."""
    return PoseStamped(header=make_header(frame_id, stamp_s), pose=matrix_to_pose_msg(T))


def pose_array_to_matrices(msg: PoseArray) -> np.ndarray:
    """geometry_msgs/PoseArray -> (C, 4, 4) transforms."""
    out = np.empty((len(msg.poses), 4, 4))
    for i, pose in enumerate(msg.poses):
        try:
            out[i] = pose_msg_to_matrix(pose)
        except ValueError as exc:
            raise ValueError(f"PoseArray.poses[{i}]: {exc}") from exc
    return out


def matrices_to_pose_array(Ts: np.ndarray, frame_id: str = "world",
                           stamp_s: float | None = None) -> PoseArray:
    """(C, 4, 4) transforms -> geometry_msgs/PoseArray."""
    Ts = np.asarray(Ts, dtype=np.float64)
    if Ts.ndim != 3 or Ts.shape[1:] != (4, 4):
        raise ValueError(f"Ts must be (C, 4, 4), got {Ts.shape}")
    return PoseArray(header=make_header(frame_id, stamp_s), poses=[matrix_to_pose_msg(T) for T in Ts])


# --------------------------------------------------------------------------------------------------
# sensor_msgs/JointState
# --------------------------------------------------------------------------------------------------


def joint_state_to_numpy(msg: JointState, names: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """sensor_msgs/JointState -> (names, positions (n,) float64).

    Args:
        msg: the message.
        names: when given, return positions in this order (a subset of the message's joints).

    Raises:
        ValueError: ``position`` and ``name`` lengths differ, or a requested joint is missing.
    """
    msg_names = list(msg.name)
    pos = np.asarray(msg.position, dtype=np.float64)
    if pos.shape != (len(msg_names),):
        raise ValueError(f"JointState.position has {pos.size} values for {len(msg_names)} names")
    if names is None:
        return msg_names, pos.copy()
    index = {n: i for i, n in enumerate(msg_names)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"JointState.name lacks joints {missing} (has {msg_names})")
    return list(names), pos[[index[n] for n in names]]


def numpy_to_joint_state(names: Sequence[str], positions: np.ndarray, velocities: np.ndarray | None = None,
                         efforts: np.ndarray | None = None, stamp_s: float | None = None) -> JointState:
    """Names + (n,) positions (+ velocities, efforts) -> sensor_msgs/JointState."""
    names = [str(n) for n in names]
    msg = JointState(header=make_header("", stamp_s), name=names)
    for field, values in (("position", positions), ("velocity", velocities), ("effort", efforts)):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size != len(names):
            raise ValueError(f"JointState.{field} has {values.size} values for {len(names)} names")
        setattr(msg, field, array.array("d", values.tobytes()))
    return msg


# --------------------------------------------------------------------------------------------------
# sensor_msgs/CameraInfo
# --------------------------------------------------------------------------------------------------


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """sensor_msgs/CameraInfo -> CameraIntrinsics, from ``k``.

    Distortion is ignored: the project's cameras publish rectified images.

    Raises:
        ValueError: zero size or non-positive focal lengths in ``k``.
    """
    k = np.asarray(msg.k, dtype=np.float64)
    if msg.width <= 0 or msg.height <= 0:
        raise ValueError(f"CameraInfo.width/height must be positive, got {msg.width}x{msg.height}")
    if k.shape != (9,) or not np.all(np.isfinite(k)) or k[0] <= 0 or k[4] <= 0:
        raise ValueError(f"CameraInfo.k must hold positive focal lengths, got {k.tolist()}")
    return CameraIntrinsics(int(msg.width), int(msg.height),
                            float(k[0]), float(k[4]), float(k[2]), float(k[5]))


def intrinsics_to_camera_info(intr: CameraIntrinsics, frame_id: str = "",
                              stamp_s: float | None = None) -> CameraInfo:
    """CameraIntrinsics -> sensor_msgs/CameraInfo (plumb_bob, zero distortion, identity R)."""
    msg = CameraInfo(header=make_header(frame_id, stamp_s), width=int(intr.width), height=int(intr.height),
                     distortion_model="plumb_bob")
    msg.d = [0.0] * 5
    msg.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
