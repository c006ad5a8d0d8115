# SPDX-License-Identifier: Apache-2.0
"""vla_interfaces is built into the venv by `make install` and imports in a fresh interpreter.

No environment is sourced: the process starts with LD_LIBRARY_PATH and PYTHONPATH removed, as a
user's shell would have them, so this fails if the typesupport libraries were not installed where
the ros-jazzy-* wheels' bootstrapper looks (.venv/lib).
"""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
from vla_interfaces.action import Manipulate
from vla_interfaces.msg import TaskStatus
goal = Manipulate.Goal(instruction="pick up the red mug", max_attempts=2, timeout_s=30.0)
fb = Manipulate.Feedback(stage="grasp", stage_index=0, stage_count=2, attempt=1, state="moving")
res = Manipulate.Result(success=False, outcome="cancelled", reason="cancel requested", stages=["grasp"])
st = TaskStatus(task_id="abc", outcome="succeeded", success=True, stages=["grasp", "place"], stages_done=2)
# serialise through the C typesupport (what DDS uses): fails if the typesupport library is missing
from rclpy.serialization import deserialize_message, serialize_message
for m in (goal, fb, res, st):
    assert deserialize_message(serialize_message(m), type(m)) == m
print(Manipulate.Goal.get_fields_and_field_types())
"""


def test_interfaces_import_without_sourcing(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH",
                         "_ROS_WHEELS_BOOTSTRAP_COMPLETE")}
    r = subprocess.run([sys.executable, "-c", PROBE],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    fields = r.stdout
    assert "'instruction': 'string'" in fields and "'max_attempts': 'uint8'" in fields
