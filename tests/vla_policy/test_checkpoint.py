# SPDX-License-Identifier: Apache-2.0
"""The shipped SR checkpoint on held-out seen grasp scenes, live: sim -> perception -> priors -> policy.

Episodes use seeds far from the collected ones (collection used 0..399), rendered and fused exactly
as at collection time; the expert's grasp is the reference. A pick counts when it is the expert's
labelled candidate or lies within 2 cm and 15 deg of the expert's grasp.

Measured at shipping time (checkpoints/SR/README.md): 0 of the 8 decisions these 12 seeds give,
2 of 18 (11 %) on 30 held-out grasp episodes (seeds 900000-900029) - chance level, because the
compact CLIP's features barely ground the instructions (zero-shot top-1 2.5 % vs 1.7 % chance on
our data) and only 386 demonstrations were collected. FLOOR is the modest above-chance rate a
useful checkpoint must reach; the test is marked xfail (not strict) until one is shipped, so it
runs, reports the real rate, and turns XPASS when a better checkpoint lands.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_policy.policy import CHECKPOINT_DIR

SR_DIR = CHECKPOINT_DIR / "SR"
SEEDS = range(900_000, 900_012)
FLOOR = 0.10

pytestmark = pytest.mark.skipif(not (SR_DIR / "config.json").exists(), reason="no shipped SR checkpoint")


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="shipped SR checkpoint measured at chance level (see README)")
def test_shipped_sr_picks_expert_grasp_on_heldout_scenes():
    import torch

    from vla_policy.policy import Policy
    from vla_policy.train import evaluate, heldout_samples

    torch.set_num_threads(1)
    policy = Policy.load(SR_DIR)
    samples = heldout_samples("grasp", SEEDS, policy.meta.get("clip") or "compact")
    assert len(samples) >= 8, "too few held-out decisions could be labelled by the expert"
    ev = evaluate(policy.model, samples)
    print(json.dumps(ev))
    assert ev["val_hit"] >= FLOOR, ev
    assert np.isfinite(ev["val_ce"])
