# SPDX-License-Identifier: Apache-2.0
"""Gazebo export, checked statically (no Gazebo here): fresh, well-formed, complete, same topics.

The topic test compares the export with the topics the real PyBullet sim_bridge node creates.
No SDFormat 1.11 parser installs here (Debian ships sdformat 12 = SDF 1.9), so the world is checked
against the SDFormat 1.11 specification files of Gazebo Harmonic's libsdformat (vendored in
tests/vla_sim/data/sdformat14_sdf_1.11: every element and attribute allowed where it stands, every
required child present, every value of its type), plus the facts that matter: every object of the
scene with its catalogue mass, every referenced mesh file present, the cameras at the rig's poses.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import yaml

from vla_executor.robot_model import RobotModel
from vla_executor.robots.generate import rpy_to_rot
from vla_sim import gazebo_export as gx
from vla_sim import objects as objlib
from vla_sim.scenes import Scene, SceneObject, make_scene
from vla_sim.world import default_rig

SHIPPED = gx.OUT_DIR
SPEC_DIR = Path(__file__).parent / "data" / "sdformat14_sdf_1.11"
# ROS <-> Gazebo message pairs ros_gz_bridge translates (the subset this export may use) and the keys
# its YAML parser reads (ros_gz_bridge/ros_gz_bridge/mappings.py, src/bridge_config.cpp, jazzy branch)
BRIDGE_PAIRS = {("rosgraph_msgs/msg/Clock", "gz.msgs.Clock"), ("sensor_msgs/msg/Image", "gz.msgs.Image"),
                ("sensor_msgs/msg/CameraInfo", "gz.msgs.CameraInfo"),
                ("std_msgs/msg/Float64", "gz.msgs.Double")}
BRIDGE_KEYS = {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction", "lazy",
               "publisher_queue", "subscriber_queue"}


def _pose(text: str) -> np.ndarray:
    v = [float(x) for x in text.split()]
    T = np.eye(4)
    T[:3, :3] = rpy_to_rot(tuple(v[3:]))
    T[:3, 3] = v[:3]
    return T


class SdfSpec:
    """The SDFormat description files: element specs by file, resolving ``<include filename>``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._cache: dict[str, ET.Element] = {}

    def root(self, filename: str) -> ET.Element:
        if filename not in self._cache:
            self._cache[filename] = ET.parse(self.folder / filename).getroot()
        return self._cache[filename]

    def children(self, spec: ET.Element) -> dict[str, tuple[ET.Element, str]]:
        """{child element name: (its spec, required)} of an element spec."""
        out = {}
        for c in spec:
            if c.tag == "element" and c.get("name"):
                out[c.get("name")] = (c, c.get("required", "0"))
            elif c.tag == "include":
                inc = self.root(c.get("filename"))
                out[inc.get("name")] = (inc, c.get("required", "0"))
        return out


def _value_ok(kind: str | None, text: str) -> bool:
    words = text.split()
    try:
        if kind in ("double", "float"):
            float(text)
        elif kind in ("int", "unsigned int"):
            return int(text) >= 0 or kind == "int"
        elif kind == "bool":
            return text.strip() in ("true", "false", "0", "1")
        elif kind in ("vector3", "pose", "color", "vector2d", "vector2i"):
            n = {"vector3": (3,), "pose": (6, 7), "color": (3, 4), "vector2d": (2,), "vector2i": (2,)}[kind]
            [float(w) for w in words]
            return len(words) in n
    except ValueError:
        return False
    return True


def _fillable(spec: ET.Element, sdf: SdfSpec) -> bool:
    """True when libsdformat can create a missing required element from defaults alone."""
    if spec.get("type"):
        return spec.get("default") not in (None, "__default__")
    if any(a.get("required") == "1" and a.get("default") in (None, "__default__")
           for a in spec.findall("attribute")):
        return False
    return all(_fillable(k, sdf) for k, req in sdf.children(spec).values() if req in ("1", "+"))


def sdf_errors(el: ET.Element, spec: ET.Element, sdf: SdfSpec, path: str = "") -> list[str]:
    """Where ``el`` breaks its specification (empty = valid)."""
    path = f"{path}/{el.tag}" + (f"[{el.get('name')}]" if el.get("name") else "")
    if any(c.tag == "element" and c.get("copy_data") == "true" for c in spec):
        return []  # <plugin>: free-form content
    errors = []
    attrs = {a.get("name"): a for a in spec.findall("attribute")}
    for name, value in el.attrib.items():
        if name not in attrs:
            errors.append(f"{path}: attribute {name!r} is not in the SDFormat 1.11 spec")
        elif not _value_ok(attrs[name].get("type"), value):
            errors.append(f"{path}: attribute {name}={value!r} is not a {attrs[name].get('type')}")
    for name, a in attrs.items():
        if a.get("required") == "1" and name not in el.attrib:
            errors.append(f"{path}: required attribute {name!r} missing")
    kids = sdf.children(spec)
    for child in el:
        if child.tag not in kids:
            errors.append(f"{path}: element <{child.tag}> is not allowed here")
            continue
        errors += sdf_errors(child, kids[child.tag][0], sdf, path)
    for name, (kid, req) in kids.items():  # libsdformat fills in required elements that have defaults
        if req in ("1", "+") and el.find(name) is None and not _fillable(kid, sdf):
            errors.append(f"{path}: required element <{name}> missing")
    if spec.get("type") and not _value_ok(spec.get("type"), (el.text or "").strip()):
        errors.append(f"{path}: value {el.text!r} is not a {spec.get('type')}")
    return errors


def test_world_follows_the_sdformat_1_11_spec():
    sdf = SdfSpec(SPEC_DIR)
    root = ET.parse(SHIPPED / "world.sdf").getroot()
    assert sdf_errors(root, sdf.root("root.sdf"), sdf) == []
    # every kind of catalogue geometry (primitives, open boxes, capsules, meshes with hull, box and
    # decomposition collisions), all 68 objects in one world
    objs = [SceneObject(s.name, (0.2 * (k % 9), 0.2 * (k // 9), 0.1), rest_on_table=True)
            for k, s in enumerate(objlib.CATALOGUE)]
    files = gx.build_scene(Scene("grasp", "seen", 0, objs))
    every = ET.fromstring(files["world.sdf"])
    assert sdf_errors(every, sdf.root("root.sdf"), sdf) == []
    assert len(every.findall("world/model")) == len(objlib.CATALOGUE) + 4
    uris = {u.text for u in every.iter("uri")}
    assert uris and uris <= set(files)
    assert every.find(".//mesh[@optimization='convex_hull']") is not None
    # the checker finds what libsdformat would refuse
    bad = ET.fromstring('<sdf version="1.11"><world name="w"><model name="m"><link name="l">'
                        "<inertial><mass>heavy</mass></inertial><visual name='v'><geometry><mesh>"
                        "<optimization>convex_hull</optimization></mesh></geometry></visual>"
                        "</link></model></world></sdf>")
    errors = sdf_errors(bad, sdf.root("root.sdf"), sdf)
    assert any("<optimization> is not allowed" in e for e in errors)
    assert any("'heavy' is not a double" in e for e in errors)
    assert any("required element <uri> missing" in e for e in errors)


def test_shipped_export_matches_the_exporter():
    fresh = gx.build()
    on_disk = {str(p.relative_to(SHIPPED)): p.read_bytes() for p in SHIPPED.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(fresh), "vla_sim/gazebo is stale: run python -m vla_sim.gazebo_export"
    stale = [k for k in fresh if on_disk[k] != fresh[k]]
    assert not stale, f"stale files {stale}: run python -m vla_sim.gazebo_export"


def test_world_has_the_scene_objects_table_and_cameras():
    root = ET.parse(SHIPPED / "world.sdf").getroot()
    assert root.tag == "sdf" and root.get("version") == "1.11"
    world = root.find("world")
    models = {m.get("name"): m for m in world.findall("model")}
    scene = make_scene("grasp", "seen", 0)
    for o in scene.objects:
        m = models[gx.model_name(o.name)]
        spec = objlib.get(o.name)
        assert float(m.find("link/inertial/mass").text) == pytest.approx(spec.mass_kg)
        inertia = [float(m.find(f"link/inertial/inertia/{k}").text) for k in ("ixx", "iyy", "izz")]
        assert min(inertia) > 0
        assert m.findall("link/collision") and m.findall("link/visual")
        assert m.find("link/collision/surface/friction/ode/mu").text == gx._f(spec.friction)
    assert set(models) == {gx.model_name(o.name) for o in scene.objects} | {"table"} | {
        f"camera_{c.name}" for c in default_rig()}
    top = [float(v) for v in models["table"].find("pose").text.split()]
    size = [float(v) for v in models["table"].find("link/collision/geometry/box/size").text.split()]
    assert top[2] + size[2] / 2 == pytest.approx(0.0)  # table top at z = 0
    uris = [u.text for u in root.iter("uri")]
    missing = [u for u in uris if not (SHIPPED / u).is_file()]
    assert uris and not missing, missing
    systems = {p.get("name") for p in world.findall("plugin")}
    assert {"gz::sim::systems::Physics", "gz::sim::systems::Sensors"} <= systems


def test_cameras_match_the_rig():
    world = ET.parse(SHIPPED / "world.sdf").getroot().find("world")
    for cam in default_rig():
        m = world.find(f"model[@name='camera_{cam.name}']")
        sensor = m.find("link/sensor")
        assert sensor.get("type") == "rgbd_camera" and sensor.find("topic").text == f"cameras/{cam.name}"
        T_gz = _pose(m.find("pose").text)
        T_opt = T_gz.copy()
        T_opt[:3, :3] = T_gz[:3, :3] @ gx.R_OPT_GZ.T
        assert np.allclose(T_opt, cam.T_world_cam, atol=1e-5)
        # Gazebo looks along its x axis: that must be the optical z axis of the rig camera
        assert np.allclose(T_gz[:3, 0], cam.T_world_cam[:3, 2], atol=1e-5)
        K = cam.intrinsics
        c = sensor.find("camera")
        assert c.find("optical_frame_id").text == cam.frame_id
        hfov = 2 * math.atan(K.width / (2 * K.fx))
        assert float(c.find("horizontal_fov").text) == pytest.approx(hfov, abs=1e-6)
        assert float(c.find("lens/intrinsics/fx").text) == pytest.approx(K.fx)
        assert (int(c.find("image/width").text), int(c.find("image/height").text)) == (K.width, K.height)


def test_robot_urdf_has_ros2_control_and_unchanged_kinematics():
    model = RobotModel.load("ur5")
    text = (SHIPPED / "ur5_gazebo.urdf").read_text()
    root = ET.fromstring(text)
    ours = ET.fromstring(model.urdf_path.read_text())
    def joints_xml(urdf):
        out = []
        for j in urdf.findall("joint"):
            if j.get("name") == "world_joint":
                continue
            j.tail = None
            out.append(ET.tostring(j))
        return out

    assert joints_xml(root) == joints_xml(ours)  # the same kinematic chain and limits
    fixed = root.find("joint[@name='world_joint']")  # bolted down, or Gazebo lets the arm fall over
    assert fixed.get("type") == "fixed" and fixed.find("parent").get("link") == "world"
    assert fixed.find("child").get("link") == model.base_frame
    rc = root.find("ros2_control")
    assert rc.find("hardware/plugin").text == "gz_ros2_control/GazeboSimSystem"
    joints = {j.get("name"): j for j in rc.findall("joint")}
    assert list(joints) == list(model.joint_names) + list(model.gripper["joints"])
    for name in model.joint_names:
        assert [c.get("name") for c in joints[name].findall("command_interface")] == ["position"]
    for name in model.gripper["joints"]:
        assert not joints[name].findall("command_interface")  # driven by the gz position controllers
    plugins = {p.get("name"): p for p in root.iter("plugin") if p.get("name")}
    assert plugins["gz_ros2_control::GazeboSimROS2ControlPlugin"].find("parameters").text == "@CONTROLLERS@"
    fingers = [p for p in root.iter("plugin") if p.get("name") == "gz::sim::systems::JointPositionController"]
    assert sorted(p.find("joint_name").text for p in fingers) == sorted(model.gripper["joints"])
    assert {p.find("topic").text for p in fingers} == {"/gripper_controller/command"}
    ctrl = yaml.safe_load((SHIPPED / "controllers_ur5.yaml").read_text())
    assert ctrl["arm_controller"]["ros__parameters"]["joints"] == list(model.joint_names)
    assert set(ctrl["controller_manager"]["ros__parameters"]) >= {"joint_state_broadcaster", "arm_controller"}


@pytest.fixture(scope="module")
def pybullet_bridge_topics():
    """(published, subscribed) topic names of the real sim_bridge node (PyBullet, tiny renderer)."""
    rclpy = pytest.importorskip("rclpy")
    from vla_sim.bridge_node import SimBridgeNode

    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "renderer:=tiny", "-p", "render_width:=64",
                                      "-p", "render_height:=48"])
    try:
        import vla_sim.bridge_node as bn
        orig = bn.Node.__init__

        def init_in_context(self, name, **kw):  # the node in this test's own context
            orig(self, name, context=context, **kw)

        bn.Node.__init__ = init_in_context
        try:
            node = SimBridgeNode()
        finally:
            bn.Node.__init__ = orig
        pubs = {p.topic_name for p in node.publishers}
        subs = {s.topic_name for s in node.subscriptions}
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    internal = {"/rosout", "/parameter_events"}
    return pubs - internal, subs - internal


def test_bridge_puts_gazebo_on_the_pybullet_topics(pybullet_bridge_topics):
    pubs, subs = pybullet_bridge_topics
    entries = yaml.safe_load((SHIPPED / "bridge.yaml").read_text())
    assert all((e["ros_type_name"], e["gz_type_name"]) in BRIDGE_PAIRS for e in entries), entries
    assert all(set(e) <= BRIDGE_KEYS and e["direction"] in ("GZ_TO_ROS", "ROS_TO_GZ") for e in entries)
    assert len({e["ros_topic_name"] for e in entries}) == len(entries)
    to_ros = {e["ros_topic_name"] for e in entries if e["direction"] == "GZ_TO_ROS"}
    to_gz = {e["ros_topic_name"] for e in entries if e["direction"] == "ROS_TO_GZ"}
    # in Gazebo: /joint_states from joint_state_broadcaster, the rig from gazebo.launch.py's publisher,
    # /arm_controller/joint_trajectory subscribed by the ros2_control arm_controller
    gazebo_pubs = to_ros | {"/joint_states", "/cameras/rig_calibration"}
    gazebo_subs = to_gz | {"/arm_controller/joint_trajectory"}
    # the simulator's own channels (status events incl. privileged object_lifted, /sim/* control) have no
    # counterpart on a robot and are not bridged
    sim_only = {"/vla/status"}
    assert gazebo_pubs == {t for t in pubs if not t.startswith("/sim/")} - sim_only
    assert gazebo_subs == {t for t in subs if not t.startswith("/sim/")}
    # camera gz topics are what the rgbd_camera sensors publish
    world = ET.parse(SHIPPED / "world.sdf").getroot()
    sensor_topics = {"/" + s.find("topic").text for s in world.iter("sensor")}
    for e in entries:
        if e["gz_topic_name"].startswith("/cameras/"):
            assert e["gz_topic_name"].rsplit("/", 1)[0] in sensor_topics


def test_launch_plan_and_missing_export(tmp_path):
    plan = gx.launch_plan(SHIPPED, headless=True)
    assert plan["gz_args"] == f"-s -r {SHIPPED.resolve() / 'world.sdf'}"
    controllers = ET.fromstring(plan["robot_description"]).find(
        ".//plugin[@name='gz_ros2_control::GazeboSimROS2ControlPlugin']/parameters").text
    assert Path(controllers).is_file()
    rig = yaml.safe_load(json.loads(plan["rig_message"])["data"])
    assert set(rig["cameras"]) == {"top", "left", "right"}
    assert Path(plan["bridge_config"]).is_file() and plan["controllers"] == ["joint_state_broadcaster",
                                                                             "arm_controller"]
    with pytest.raises(FileNotFoundError, match="python -m vla_sim.gazebo_export --out"):
        gx.launch_plan(tmp_path)
    with pytest.raises(ValueError, match="place task"):
        gx.scene_poses(make_scene("place", "seen", 0))
