# SPDX-License-Identifier: Apache-2.0
"""Robot descriptions (URDF + YAML) of the UR5 and the humanoid arm; written by generate.py."""
