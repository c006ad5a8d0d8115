# SPDX-License-Identifier: Apache-2.0
"""A minimal talker/listener pair (the ``test`` graph) used to test ``vla launch`` and DDS setup.

They are real rclpy nodes, run as ``python -m vla_common.testing_nodes.talker`` and
``... .listener``; they carry no robot logic.
"""
