# SPDX-License-Identifier: Apache-2.0
"""Synthetic surface point clouds (a table plane and boxes) for the prior tests."""

from __future__ import annotations

import numpy as np


def table(half=0.25, step=0.005, z=0.0, center=(0.5, 0.0)):
    g = np.arange(-half, half + 1e-9, step)
    xx, yy = np.meshgrid(g + center[0], g + center[1])
    return np.c_[xx.ravel(), yy.ravel(), np.full(xx.size, z)]


def box(size, center, step=0.003, yaw=0.0):
    """Visible surface (top + 4 sides) of a box resting on z = 0; size (x, y, z) metres."""
    sx, sy, sz = size
    pts = []
    gx, gy, gz = (np.arange(-s / 2, s / 2 + 1e-9, step) for s in (sx, sy, sz))
    X, Y = np.meshgrid(gx, gy)
    pts.append(np.c_[X.ravel(), Y.ravel(), np.full(X.size, sz / 2)])
    for sgn in (-1, 1):
        Y, Z = np.meshgrid(gy, gz)
        pts.append(np.c_[np.full(Y.size, sgn * sx / 2), Y.ravel(), Z.ravel()])
        X, Z = np.meshgrid(gx, gz)
        pts.append(np.c_[X.ravel(), np.full(X.size, sgn * sy / 2), Z.ravel()])
    p = np.concatenate(pts)
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    p = p @ R.T + np.array([center[0], center[1], sz / 2])
    return p


def box_scene(size=(0.05, 0.12, 0.08), center=(0.5, 0.0), yaw=0.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    t = table()
    b = box(size, center, yaw=yaw)
    # remove table points under the box footprint
    c, s = np.cos(-yaw), np.sin(-yaw)
    local = (t[:, :2] - np.array(center)) @ np.array([[c, -s], [s, c]]).T
    under = (np.abs(local[:, 0]) < size[0] / 2) & (np.abs(local[:, 1]) < size[1] / 2)
    p = np.concatenate([t[~under], b])
    return p + noise * rng.standard_normal(p.shape)
