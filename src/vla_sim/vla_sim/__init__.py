# SPDX-License-Identifier: Apache-2.0
"""PyBullet world, scenes, instructions, expert, success checks, evaluation and the sim bridge node."""
