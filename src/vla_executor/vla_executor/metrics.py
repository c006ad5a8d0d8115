# SPDX-License-Identifier: Apache-2.0
"""Per-motion metrics: execution time, joint path length, RMS jerk (the arm-jitter measure).

Jitter is a failure mode reported for humanoid-arm manipulation (seeds 000_5fbc6ba69300ff4c);
RMS jerk, the root mean square over time of the joint-jerk vector norm, is how we measure it,
both on planned trajectories and on joint states recorded during execution.
"""

from __future__ import annotations

import numpy as np


def joint_path_length(q: np.ndarray) -> float:
    """Sum of the L2 joint-space step lengths of q (K, n), rad."""
    q = np.asarray(q, dtype=np.float64)
    return float(np.linalg.norm(np.diff(q, axis=0), axis=1).sum()) if len(q) > 1 else 0.0


def rms_jerk(t: np.ndarray, q: np.ndarray) -> float:
    """RMS of |d^3 q / dt^3| (rad/s^3) by finite differences of q (K, n) sampled at times t (K,).

    Uses successive central differences on the (possibly non-uniform) time grid; 0 for K < 4.
    """
    t = np.asarray(t, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if len(t) < 4:
        return 0.0
    qd = np.gradient(q, t, axis=0)
    qdd = np.gradient(qd, t, axis=0)
    jerk = np.gradient(qdd, t, axis=0)  # (K, n)
    return float(np.sqrt(np.mean(np.sum(jerk**2, axis=1))))


def trajectory_metrics(t: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Execution time (s), joint path length (rad) and RMS jerk (rad/s^3) of one motion."""
    return {"execution_time_s": float(t[-1] - t[0]) if len(t) else 0.0,
            "path_length_rad": joint_path_length(q), "rms_jerk": rms_jerk(t, q)}
