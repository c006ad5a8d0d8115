# SPDX-License-Identifier: Apache-2.0
r"""Refit the presence recogniser and its target-not-found threshold, and measure both on held-out scenes.

Tooling (imports the simulator for the held-out decisions). Steps:

1. load the shards of ``--data`` (``vla collect --task grasp`` and ``--task place``: place scenes
   hold the containers and supports that grasp scenes never show; object AABBs are training
   metadata);
2. ``train.calibrate_presence``: heads (``--hidden`` > 0: one shared ReLU layer) fitted on every
   sample, threshold chosen on 2-fold out-of-sample scores (``--min-tpr``: the highest threshold
   that still accepts that share of true instructions; default: best balanced accuracy);
3. held-out: fresh expert decisions on ``--heldout-seeds`` (never collected for training), seen and
   unseen objects, scored by the fitted recogniser at the chosen threshold: accepted share of true
   instructions (TPR), refused share of instructions naming an absent object (TNR, strict
   negatives), ROC AUC, and 3D grounding accuracy (:func:`heldout_grounding`), also of place
   references on ``--heldout-place`` shards; the recogniser
   shipped before the run is measured on the same decisions (``previous_*``);
4. ``--install``: write the recogniser into the shipped ``checkpoints/presence`` and the threshold
   and metrics into the meta of every shipped checkpoint that uses it.

``--as-attributes`` (with ``--inputs``): the fitted recogniser becomes the shipped one's
``attributes`` recogniser (used for the objects the shipped heads were not fitted on,
``PresenceRecogniser.referent_probs``); the shipped heads and threshold stay, and the held-out
grounding of the combination is reported as ``combined_*``.

Usage::

    python -m vla_policy.presence_calibration --data data/grasp_v4 data/place_v1 --hidden 128 \\
        --min-tpr 0.90 --heldout-seeds 900000:900060 --heldout-place data/heldout_place_v1 \\
        --out outputs/presence
    python -m vla_policy.presence_calibration --data data/grasp_v4 data/place_v1 --hidden 64 \\
        --inputs "colour=colour;shape=geometry;category=geometry" --as-attributes --min-tpr 0.90 \\
        --heldout-seeds 900000:900060 --heldout-place data/heldout_place_v1 --out outputs/presence_attributes
    python -m vla_policy.presence_calibration --install-from outputs/presence \
        --heldout-seeds 900000:900060 --heldout-place data/heldout_place_v1   # ship it later, no refit
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from vla_policy.data import load_samples
from vla_policy.policy import (
    CHECKPOINT_DIR,
    DESCRIPTOR_GROUPS,
    Policy,
    PresenceRecogniser,
    instruction_referents,
    presence_descriptors,
)
from vla_policy.train import (
    calibrate_presence,
    heldout_samples,
    presence_pairs,
    roc_auc,
    target_visible,
)


def cached_heldout(split: str, seeds: range, cache: Path | None) -> list[dict[str, Any]]:
    """``train.heldout_samples`` of ``split`` (grasp), kept in ``cache`` (npz + json) between runs."""
    if cache is None:
        return heldout_samples("grasp", seeds, split=split)
    stem = cache / f"heldout_grasp_{split}_{seeds.start}_{seeds.stop}"
    if stem.with_suffix(".json").is_file() and stem.with_suffix(".npz").is_file():
        metas = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return [{**{k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{i}/")}, "meta": m}
                for i, m in enumerate(metas)]
    samples = heldout_samples("grasp", seeds, split=split)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(stem.with_suffix(".npz"), **{f"{i}/{k}": v for i, s in enumerate(samples)
                                                    for k, v in s.items() if k != "meta"})
    stem.with_suffix(".json").write_text(json.dumps([s["meta"] for s in samples]))
    return samples


def heldout_presence(rec: PresenceRecogniser, threshold: float, samples: list[dict[str, Any]],
                     seed: int = 0) -> dict[str, float]:
    """TPR / TNR / AUC of ``rec`` at ``threshold`` on samples it was not fitted on (strict negatives).

    True instructions count where their target is in the stored cloud (``train.target_visible``).
    """
    vocab = rec.vocabulary
    usable = [s for s in samples if s["meta"].get("scene_objects") and s["meta"].get("target")]
    pairs = [p for p in presence_pairs(usable, vocab, np.random.default_rng(seed)) if p[2]]
    desc = {id(s): presence_descriptors(s["xyz"], s.get("rgb"), s["features"]) for s in usable}

    def score(s: dict[str, Any], text: str, kind: str) -> float:
        v = rec.presence(desc[id(s)][1], instruction_referents(text, vocab, kind))
        return float("inf") if v is None else v

    names = [v["name"] for v in vocab]
    pos = np.array([score(s, s["meta"]["instruction"], s["meta"].get("task", "grasp")) for s in usable
                    if target_visible(s, names, idx=desc[id(s)][0])])  # as in calibrate_presence
    neg = np.array([score(s, o["meta"]["instruction"], s["meta"].get("task", "grasp"))
                    for s, o, _, _ in pairs])
    return {"tpr": float((pos >= threshold).mean()), "tnr": float((neg < threshold).mean()),
            "auc": roc_auc(pos[np.isfinite(pos)], neg), "n_pos": int(len(pos)), "n_neg": int(len(neg))}


def heldout_grounding(rec: PresenceRecogniser, samples: list[dict[str, Any]], topk: int = 20
                      ) -> dict[str, float]:
    """3D grounding on fused clouds: is the most relevant object the instructed one?

    "Most relevant" (written down here, measured as such): over the object points of the cloud
    (``presence_descriptors``; each labelled with the one object AABB holding it, training metadata
    used only to score), the object whose top-``topk`` mean p(referents | point) is highest. Correct
    when that object is one the instruction describes (``instruction_referents``; a category or
    function phrase can describe several). Samples whose described object has no labelled point are
    skipped (counted in ``n_unseen_target``).
    """
    from vla_policy.train import _presence_labels

    vocab = rec.vocabulary
    names = [v["name"] for v in vocab]
    hits, skipped = [], 0
    for s in samples:
        refs = instruction_referents(s["meta"]["instruction"], vocab, s["meta"].get("task", "grasp"))
        aabbs = s["meta"].get("object_aabbs")
        if not refs or not aabbs:
            continue
        idx, d = presence_descriptors(s["xyz"], s.get("rgb"), s["features"])
        lab = _presence_labels(s["xyz"], idx, aabbs, names)
        p = rec.referent_probs(d, refs)
        scores = {}
        for j in np.unique(lab[lab >= 0]):
            pj = np.sort(p[lab == j])[::-1][:topk]
            scores[int(j)] = float(pj.mean())
        described = {names[i] for i in refs} & set(aabbs)
        if not scores or not any(names[j] in described for j in scores):
            skipped += 1
            continue
        best = max(scores, key=scores.get)
        hits.append(names[best] in described)
    return {"grounding_acc": float(np.mean(hits)) if hits else float("nan"), "n": len(hits),
            "n_unseen_target": skipped}


def install(rec: PresenceRecogniser, cal: dict[str, Any]) -> list[str]:
    """Ship ``rec`` as ``checkpoints/presence`` and its calibration into every checkpoint using it.

    The shipped attribute recogniser (objects the heads do not know) stays with the new heads; the
    ``combined_*`` numbers, measured with the old heads, are dropped.
    """
    shipped = CHECKPOINT_DIR / "presence"
    if rec.attributes is None and (shipped / f"{PresenceRecogniser.ATTRIBUTES_STEM}.json").exists():
        rec.attributes = PresenceRecogniser.load(shipped, PresenceRecogniser.ATTRIBUTES_STEM)
    rec.save(shipped)
    done = _rewrite_metas(("presence_", "combined_"),
                          {k: v for k, v in cal.items() if k.startswith("presence_") or k == "calibration"})
    print(f"installed into {', '.join(done)}")
    return done


def install_attributes(combined: PresenceRecogniser, cal: dict[str, Any]) -> list[str]:
    """Ship ``combined`` (the shipped heads + their ``attributes`` recogniser) as ``checkpoints/presence``.

    The target-not-found threshold and the ``presence_*`` numbers of every meta stay (they belong to
    the unchanged heads); the attribute recogniser's numbers go in as ``attributes_*`` /
    ``combined_*`` entries.
    """
    combined.save(CHECKPOINT_DIR / "presence")
    prefixes = ("attributes_", "combined_")
    done = _rewrite_metas(prefixes, {k: v for k, v in cal.items() if k.startswith(prefixes)})
    print(f"attribute recogniser installed for {', '.join(done)}")
    return done


def combined_grounding(rec: PresenceRecogniser, held: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """``combined_heldout_<split>_*``: 3D grounding of ``rec`` with its ``attributes`` recogniser."""
    return {f"combined_heldout_{split}_{k}": v for split, samples_ in held.items() if samples_
            for k, v in heldout_grounding(rec, samples_).items()}


def install_from(directory: Path, held: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Ship what an earlier run wrote to its ``--out`` (recogniser files + ``presence_calibration.json``).

    No refit: the run's own numbers go into the metas. An ``--as-attributes`` run's attribute
    recogniser is attached to the heads shipped *now* (which may be newer than those it was measured
    with), and the combination's ``combined_*`` grounding is measured again on ``held``
    ({split: held-out samples}); after a run of new heads, likewise with the attribute recogniser
    shipped now.
    """
    cal = json.loads((directory / "presence_calibration.json").read_text())
    if any(k.startswith("attributes_") for k in cal):
        combined = PresenceRecogniser.load(CHECKPOINT_DIR / "presence")
        combined.attributes = PresenceRecogniser.load(directory, PresenceRecogniser.ATTRIBUTES_STEM)
        cal = {k: v for k, v in cal.items() if not k.startswith("combined_")}
        return install_attributes(combined, {**cal, **combined_grounding(combined, held)})
    rec = PresenceRecogniser.load(directory)
    rec.attributes = None  # the shipped attribute recogniser stays (install attaches it)
    done = install(rec, cal)
    shipped = PresenceRecogniser.load(CHECKPOINT_DIR / "presence")
    if shipped.attributes is not None:
        _rewrite_metas(("combined_",), combined_grounding(shipped, held))
    return done


def _rewrite_metas(stale: tuple[str, ...], entries: dict[str, Any]) -> list[str]:
    """Drop the keys starting with ``stale`` and add ``entries``, in every shipped checkpoint's meta.

    Only checkpoints using ``checkpoints/presence``; returns their names.
    """
    done = []
    for cfg_file in sorted(CHECKPOINT_DIR.glob("*/config.json")):
        blob = json.loads(cfg_file.read_text())
        if blob.get("meta", {}).get("presence_recogniser") == "../presence":
            for k in [k for k in blob["meta"] if k.startswith(stale)]:
                del blob["meta"][k]
            blob["meta"].update(entries)
            blob["meta"]["presence_recogniser"] = "../presence"  # (a "presence_" key: dropped above)
            cfg_file.write_text(json.dumps(blob, indent=2))
            done.append(cfg_file.parent.name)
    return done


def parse_inputs(text: str) -> dict[str, list[str]]:
    """``'colour=colour;shape=clip,geometry;...'`` -> {attribute: [descriptor group, ...]}."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        attr, _, groups = part.partition("=")
        out[attr.strip()] = [g.strip() for g in groups.split(",") if g.strip()]
    if set(out) != set(PresenceRecogniser.ATTRS) or any(
            not g or set(g) - set(DESCRIPTOR_GROUPS) for g in out.values()):
        raise argparse.ArgumentTypeError(f"--inputs needs each of {PresenceRecogniser.ATTRS} = groups from "
                                         f"{DESCRIPTOR_GROUPS}, got {text!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI; prints and writes ``presence_calibration.json`` into ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", type=Path,
                    help="shard directories to fit on (not with --install-from)")
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--inputs", default=None, type=parse_inputs,
                    help="factorised recogniser (needs --hidden): each attribute's descriptor groups, e.g. "
                         "'colour=colour;shape=clip,geometry;category=clip,geometry'")
    ap.add_argument("--min-tpr", type=float, default=None)
    ap.add_argument("--heldout-seeds", default="900000:900060", help="first:last (exclusive)")
    ap.add_argument("--heldout-cache", type=Path, default=None, help="keep the held-out decisions here")
    ap.add_argument("--heldout-place", type=Path, nargs="*", default=[],
                    help="held-out place shards (vla collect --task place, seeds used for nothing else): "
                         "how often the best-scoring object is the named reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("outputs/presence"))
    ap.add_argument("--install", action="store_true", help="ship it (checkpoints/presence + every meta)")
    ap.add_argument("--as-attributes", action="store_true",
                    help="fit the recogniser of objects the shipped one does not know "
                         "(PresenceRecogniser.attributes; use with --inputs) and attach it to the shipped "
                         "recogniser, whose heads and target-not-found threshold stay as they are")
    ap.add_argument("--install-from", type=Path, default=None, metavar="DIR",
                    help="ship the recogniser an earlier run wrote to its --out, without fitting again "
                         "(the held-out arguments measure the combination with the other recogniser)")
    args = ap.parse_args(argv)
    a, b = (int(x) for x in args.heldout_seeds.split(":"))
    if args.install_from is not None:
        held = {"seen": cached_heldout("seen", range(a, b), args.heldout_cache),
                "unseen": cached_heldout("unseen", range(a, b), args.heldout_cache),
                "place": [x for d in args.heldout_place for x in load_samples(d)]}
        print(f"installed into {', '.join(install_from(args.install_from, held))}")
        return 0
    if not args.data:
        ap.error("--data is required (unless --install-from)")
    if args.as_attributes and args.inputs is None:
        ap.error("--as-attributes needs --inputs (the attribute recogniser's descriptor groups)")
    samples = [s for d in args.data for s in load_samples(d)]
    policy = Policy.load("SR")
    # the heads learn every object of every shard; the refusal threshold is set on grasp decisions
    # only (pairs of a place reference with another shard's grasp target compare different things)
    grasp = [s for s in samples if s["meta"].get("task", "grasp") == "grasp"]
    cal = calibrate_presence(policy, grasp, args.seed, fit_samples=samples, hidden=args.hidden,
                             min_tpr=args.min_tpr, inputs=args.inputs)
    if cal.get("presence_statistic") != "recogniser":
        raise SystemExit(f"calibration did not fit a recogniser: {cal.get('calibration')}")
    rec = PresenceRecogniser.from_meta(cal.pop("presence_recogniser"))
    held = cached_heldout("seen", range(a, b), args.heldout_cache)
    held_unseen = cached_heldout("unseen", range(a, b), args.heldout_cache)
    threshold = cal["presence_threshold"]
    if threshold is None:
        threshold = cal["presence_best_threshold"]
    ho = heldout_presence(rec, threshold, held, args.seed)
    cal.update({f"presence_heldout_grasp_{k}": v for k, v in ho.items()})
    cal.update({f"presence_heldout_unseen_grasp_{k}": v
                for k, v in heldout_presence(rec, threshold, held_unseen, args.seed).items()})
    for split, samples_ in (("seen", held), ("unseen", held_unseen)):
        cal.update({f"presence_heldout_{split}_{k}": v for k, v in heldout_grounding(rec, samples_).items()})
    held_place = [x for d in args.heldout_place for x in load_samples(d)]
    if held_place:
        cal.update({f"presence_heldout_place_{k}": v for k, v in heldout_grounding(rec, held_place).items()})
    shipped = policy.recogniser  # the recogniser shipped before this run, on the same held-out decisions
    if shipped is not None and policy.meta.get("presence_threshold") is not None:
        base = heldout_presence(shipped, float(policy.meta["presence_threshold"]), held, args.seed)
        cal.update({f"previous_heldout_grasp_{k}": v for k, v in base.items()})
        base = heldout_presence(shipped, float(policy.meta["presence_threshold"]), held_unseen, args.seed)
        cal.update({f"previous_heldout_unseen_grasp_{k}": v for k, v in base.items()})
        for split, samples_ in (("seen", held), ("unseen", held_unseen), ("place", held_place)):
            if samples_:
                cal.update({f"previous_heldout_{split}_{k}": v
                            for k, v in heldout_grounding(shipped, samples_).items()})
    cal["presence_heldout_seeds"] = args.heldout_seeds
    cal["presence_fit_data"] = [str(d) for d in args.data]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.as_attributes:
        if shipped is None:
            raise SystemExit("--as-attributes needs a shipped presence recogniser to attach to")
        combined = shipped  # the policy's recogniser, loaded from checkpoints/presence
        combined.attributes = rec
        # what the policy uses from now on: the shipped heads for objects they know, these for the rest
        for split, samples_ in (("seen", held), ("unseen", held_unseen), ("place", held_place)):
            if samples_:
                cal.update({f"combined_heldout_{split}_{k}": v
                            for k, v in heldout_grounding(combined, samples_).items()})
        cal = {f"attributes_{k}" if k.startswith("presence_") else k: v for k, v in cal.items()}
        combined.save(args.out)
    else:
        rec.save(args.out)
    (args.out / "presence_calibration.json").write_text(json.dumps(cal, indent=2))
    print(json.dumps({k: v for k, v in cal.items() if not isinstance(v, (list, dict))}, indent=2))
    if args.install:
        if args.as_attributes:
            install_attributes(combined, cal)
        else:
            install(rec, cal)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
