# SPDX-License-Identifier: Apache-2.0
"""Two-stage cross-modal alignment policy (1-Align, 2-Align, DSSA, MGFA, PosA) and its node.

Modules: ``attention`` (softmax / relu / dssa / mgfa), ``configuration`` (PolicyConfig, variants),
``model`` (PolicyModel), ``priors`` (grasp / place candidates from the cloud), ``data`` (shards),
``collect`` / ``train`` (``vla collect`` / ``vla train``), ``policy`` (Policy.load / decide),
``policy_node`` (ROS 2), ``bench`` (``run(out_dir)``). Nothing here imports rclpy except
``policy_node``.
"""
