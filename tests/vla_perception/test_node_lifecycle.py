# SPDX-License-Identifier: Apache-2.0
"""The perception node as a lifecycle node, driven through its real services from another process.

``autostart:=false``: a configure with a rig file that does not exist fails (the node stays
unconfigured and alive, the log names the file); after the parameter is set to a real rig file,
configure loads CLIP and activate makes it active; deactivate and cleanup bring it back.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

pytest.importorskip("rclpy")
import rclpy  # noqa: E402
import rclpy.executors  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

pytestmark = pytest.mark.ros


def test_perception_lifecycle_failed_configure_then_configure_activate(tmp_path, ros_localhost_env):
    T = [[1, 0, 0, 0.5], [0, -1, 0, 0], [0, 0, -1, 1.0], [0, 0, 0, 1]]  # looking down from 1 m
    rig = {"cameras": {"top": {"T_world_cam": T}}}
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump(rig))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vla_perception.perception_node", "--ros-args", "-p", "autostart:=false",
         "-p", f"rig_calibration:={tmp_path / 'missing.yaml'}", "-p", "cameras:=['top']", "-p", "threads:=1",
         "-p", "publish_rate_hz:=0.0"],
        env=ros_localhost_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("perception_lifecycle_test", context=ctx)
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    out = ""
    try:
        change = node.create_client(ChangeState, "/perception/change_state")
        get = node.create_client(GetState, "/perception/get_state")
        setp = node.create_client(SetParameters, "/perception/set_parameters")

        def wait(cond, timeout_s):
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                ex.spin_once(timeout_sec=0.05)
                if cond():
                    return True
            return False

        assert wait(lambda: change.service_is_ready() and get.service_is_ready() and setp.service_is_ready(),
                    30.0), "no lifecycle services"

        def call(client, req, timeout_s=60.0):
            fut = client.call_async(req)
            assert wait(fut.done, timeout_s), "service did not answer"
            return fut.result()

        def transition(tid):
            return call(change, ChangeState.Request(transition=Transition(id=tid))).success

        def state():
            return call(get, GetState.Request()).current_state.id

        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert not transition(Transition.TRANSITION_CONFIGURE)  # the rig file does not exist
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and proc.poll() is None
        res = call(setp, SetParameters.Request(parameters=[
            Parameter("rig_calibration", value=str(tmp_path / "rig.yaml")).to_parameter_msg()]))
        assert res.results[0].successful
        assert transition(Transition.TRANSITION_CONFIGURE)  # loads CLIP
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert transition(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
        assert transition(Transition.TRANSITION_DEACTIVATE) and state() == State.PRIMARY_STATE_INACTIVE
        assert transition(Transition.TRANSITION_CLEANUP) and state() == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(out[-3000:])
    assert "missing.yaml" in out  # the failed configure named the file
