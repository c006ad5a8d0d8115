# SPDX-License-Identifier: Apache-2.0
"""Measure how instructions are read: templated vs held-out phrasings, and ungroundable ones.

Tooling (imports the simulator's templates and catalogue); the robot side never imports it.

For every object of the catalogue (seen and unseen) and every relation, each phrasing is filled in
and read by :meth:`Policy.understand` of a shipped checkpoint (its stored grounding vocabulary):

* **parse**: kind, object phrase, relation and reference phrase are the ones the sentence was built
  from (the templated sentence's parse is the reference for the canonical stage text);
* **same text**: the canonical stage texts (what the text tower reads) equal those of the
  templated sentence with the same slots, so the policy sees identical input;
* **grounded**: every stage is accepted and its referents include the intended object;
* **refused**: of the ungroundable instructions (unknown objects, other languages, no object),
  the share refused with ``NotUnderstood``.

Usage::

    python -m vla_policy.eval_language --out results
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import yaml

from vla_common.language import NotUnderstood, ParsedInstruction, phrase_referents
from vla_policy.policy import Policy

HELDOUT_FILE = Path(__file__).parent / "heldout_phrasings.yaml"


def load_heldout() -> dict[str, Any]:
    """The held-out phrasing set (``grasp``, ``place``, ``pickplace``, ``relations``, ``ungroundable``)."""
    return yaml.safe_load(HELDOUT_FILE.read_text())


def _grasp_phrases(o: dict[str, str]) -> dict[str, str]:
    """Object phrases of one catalogue object per template family (as vla_sim.instructions words them)."""
    return {"name": o["name"], "category": o["category"],
            "colour_shape": f"{o['colour']} {o['shape']} object"}


def cases(vocabulary: list[dict[str, str]], n_per_family: int = 400, seed: int = 0) -> list[dict[str, Any]]:
    """Templated and held-out sentences with their intended structure, sampled reproducibly."""
    from vla_sim.instructions import (
        GRASP_TEMPLATES,
        PICKPLACE_TEMPLATES,
        PLACE_TEMPLATES,
        RELATIONS,
        _articles,
    )

    rng = random.Random(seed)
    rng_d = random.Random(seed + 4)  # set D draws apart: the older sets keep the sentences they had
    held = load_heldout()
    out: list[dict[str, Any]] = []
    for _ in range(n_per_family):
        o = rng.choice(vocabulary)
        ref = rng.choice([v for v in vocabulary if v is not o])
        family = rng.choice(("name", "category", "colour_shape"))
        phrase = _grasp_phrases(o)[family]
        rel = rng.choice(RELATIONS)
        ref_phrase = ref["name"]
        det = "a" if family == "category" else "the"
        tmpl = {"name": GRASP_TEMPLATES["name"], "category": GRASP_TEMPLATES["category"],
                "colour_shape": GRASP_TEMPLATES["colour_shape"]}[family]
        base = {"object": phrase, "target": o["name"], "relation": rel, "reference": ref_phrase,
                "ref_target": ref["name"], "determiner": det}
        t = rng.choice(tmpl)
        out.append({**base, "set": "templated", "kind": "grasp",
                    "text": _articles(t.format(name=phrase, category=phrase, colour=o["colour"],
                                               shape=o["shape"]))})
        surface = rng.choice(held["relations"][rel])
        out.append({**base, "set": "templated", "kind": "place", "object": None,
                    "text": rng.choice(PLACE_TEMPLATES).format(relation=rel, reference=ref_phrase)})
        for name, phr in (("heldout", held), ("heldout_b", held["set_b"]), ("heldout_c", held["set_c"])):
            out += _heldout_cases({**base, "set": name}, phr, rng, surface)
        out.append({**base, "set": "templated", "kind": "pickplace", "object": o["name"], "determiner": "the",
                    "text": rng.choice(PICKPLACE_TEMPLATES).format(name=o["name"], relation=rel,
                                                                   reference=ref_phrase)})
        out += _heldout_cases({**base, "set": "heldout_d"}, held["set_d"], rng_d,
                              rng_d.choice(held["relations"][rel]))
    return out


def _heldout_cases(base: dict[str, Any], phr: dict[str, list[str]], rng: random.Random,
                   surface: str) -> list[dict[str, Any]]:
    """A draw's grasp, place and pick-and-place, each said with a phrasing of the held-out set ``phr``.

    ``base``: the draw's slots (``object`` phrase, ``target`` name, ``reference``...) and ``set``;
    ``surface``: the relation's held-out surface form.
    """
    return [
        {**base, "kind": "grasp", "determiner": "the",  # "the {object}"
         "text": rng.choice(phr["grasp"]).format(object=base["object"])},
        {**base, "kind": "place", "object": None,
         "text": rng.choice(phr["place"]).format(relation=surface, reference=base["reference"])},
        {**base, "kind": "pickplace", "object": base["target"], "determiner": "the",
         "text": rng.choice(phr["pickplace"]).format(object=base["target"], relation=surface,
                                                     reference=base["reference"])},
    ]


def _expected_stages(c: dict[str, Any]) -> list[tuple[str, str]]:
    grasp = c["kind"] == "grasp"
    exp = ParsedInstruction(c["text"], c["kind"], c["object"], None if grasp else c["relation"],
                            None if grasp else c["reference"], c.get("determiner", "the"))
    return exp.stages()


def evaluate(policy: Policy, n_per_family: int = 400, seed: int = 0) -> dict[str, Any]:
    """Rates per set (templated / heldout) and kind, plus the refusal rate of the ungroundable set."""
    vocab = policy.vocabulary
    if not vocab:
        raise ValueError("the checkpoint stores no grounding vocabulary (calibrate a presence recogniser)")
    names = [v["name"] for v in vocab]
    rows: dict[str, dict[str, list[int]]] = {}
    failures: list[dict[str, str]] = []
    for c in cases(vocab, n_per_family, seed):
        key = f"{c['set']}/{c['kind']}"
        r = rows.setdefault(key, {"parse": [], "grounded": []})
        try:
            parsed = policy.understand(c["text"])
        except NotUnderstood as exc:
            r["parse"].append(0)
            r["grounded"].append(0)
            failures.append({"set": key, "text": c["text"], "why": exc.reason})
            continue
        ok_parse = parsed.stages() == _expected_stages(c)
        r["parse"].append(int(ok_parse))
        grounded = True
        for kind, _ in parsed.stages():
            refs = phrase_referents(parsed.phrase(kind) or "", vocab)[0]
            want = c["target"] if kind == "grasp" else c["ref_target"]
            grounded &= want in [names[i] for i in refs]
        r["grounded"].append(int(grounded and ok_parse))
        if not ok_parse:
            failures.append({"set": key, "text": c["text"], "why": f"read as {parsed.stages()}"})
    held = load_heldout()
    older = held["ungroundable"] + held["set_b"]["ungroundable"] + held["set_c"]["ungroundable"]
    summary = {k: {m: round(sum(v) / len(v), 4) for m, v in r.items()} | {"n": len(r["parse"])}
               for k, r in sorted(rows.items())}
    for key, texts in (("ungroundable", older), ("ungroundable_d", held["set_d"]["ungroundable"])):
        refused = []
        for text in texts:
            try:
                policy.understand(text)
                refused.append(0)
                failures.append({"set": key, "text": text, "why": "accepted"})
            except NotUnderstood:
                refused.append(1)
        summary[key] = {"refused": round(sum(refused) / len(refused), 4), "n": len(refused)}
    return {"summary": summary, "failures": failures, "seed": seed, "n_per_family": n_per_family}


def markdown(result: dict[str, Any]) -> str:
    """A table of :func:`evaluate`'s summary, and the first failures."""
    lines = ["# Instruction reading: templated vs held-out phrasings", "",
             "`python -m vla_policy.eval_language` (vla_policy/eval_language.py; held-out set: "
             "vla_policy/heldout_phrasings.yaml).", "",
             "| set / kind | sentences | parsed as built | grounded on the intended object |",
             "|---|---|---|---|"]
    for k, v in result["summary"].items():
        if k.startswith("ungroundable"):
            continue
        lines.append(f"| {k} | {v['n']} | {v['parse']:.3f} | {v['grounded']:.3f} |")
    lines.append("")
    for key, what in (("ungroundable", "sets A-C"), ("ungroundable_d", "set D")):
        u = result["summary"].get(key)
        if u:
            lines.append(f"Ungroundable instructions ({what}) refused with a reason: "
                         f"{u['refused']:.3f} of {u['n']}.")
    lines += ["", "First failures:", ""]
    lines += [f"- `{f['text']}` ({f['set']}): {f['why']}" for f in result["failures"][:25]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: write ``language_eval.json`` and ``language_eval.md`` into ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="SR")
    ap.add_argument("--per-family", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("results"))
    args = ap.parse_args(argv)
    result = evaluate(Policy.load(args.checkpoint), args.per_family, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "language_eval.json").write_text(json.dumps(result, indent=1))
    (args.out / "language_eval.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
