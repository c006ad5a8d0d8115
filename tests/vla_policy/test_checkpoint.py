# SPDX-License-Identifier: Apache-2.0
"""The shipped SR checkpoint on held-out seen grasp scenes, live: sim -> perception -> priors -> policy.

Episodes use seeds far from the collected ones (training used 0..~95 and 100..~220), rendered and
fused exactly as at collection time with the shipped compact CLIP; the expert's grasp and the
simulator's object boxes are the references. Two rates are asserted:

* on target: the chosen grasp position lies on the instructed object (its world AABB grown by 1 cm,
  ``train.on_object``) - the pick is the right object. Chance (share of candidates on the target)
  is ~0.12 on these scenes (15 objects each).
* hit: the chosen candidate is the expert's labelled one or within 2 cm and 15 deg of its grasp.

Measured at shipping time (checkpoints/README.md): on target 0.36 and hit 0.12 on 83 held-out
decisions (seeds 900000-900149); on the decisions that this test's seeds give, on target
ON_TARGET_MEASURED and hit HIT_MEASURED. The floors sit below those measurements (the renders'
depth noise differs with the world seed) and well above chance, so a checkpoint that stopped
grounding the instruction fails.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_policy.policy import CHECKPOINT_DIR

SR_DIR = CHECKPOINT_DIR / "SR"
SEEDS = range(900_000, 900_024)
ON_TARGET_MEASURED = 0.64  # 9 of 14 decisions, measured with this test at shipping time
HIT_MEASURED = 0.29  # 4 of 14 (exact 2 of 14)
ON_TARGET_FLOOR = 0.45  # chance ~0.12
HIT_FLOOR = 0.14  # chance ~0.02 exact

pytestmark = pytest.mark.skipif(not (SR_DIR / "config.json").exists(), reason="no shipped SR checkpoint")


@pytest.mark.slow
def test_shipped_sr_picks_the_instructed_object_on_heldout_scenes():
    import torch

    from vla_policy.policy import Policy
    from vla_policy.train import evaluate, heldout_samples

    torch.set_num_threads(1)
    policy = Policy.load(SR_DIR)
    assert policy.cfg.relevance_pool, "the shipped SR checkpoint should use the semantic-mask pooling"
    samples = heldout_samples("grasp", SEEDS, policy.meta.get("clip") or "compact")
    assert len(samples) >= 10, "too few held-out decisions could be labelled by the expert"
    ev = evaluate(policy.model, samples)
    print(json.dumps(ev))
    assert ev["val_n_target"] == ev["val_n"], "held-out samples should carry the object boxes"
    assert ev["val_on_target"] >= ON_TARGET_FLOOR, ev
    assert ev["val_hit"] >= HIT_FLOOR, ev
    assert np.isfinite(ev["val_ce"])
