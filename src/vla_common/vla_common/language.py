# SPDX-License-Identifier: Apache-2.0
"""The instruction's structure, read from ordinary English: what to pick, where to put it.

One parser for the whole stack (the policy node, ``vla eval``, grounding and target-not-found):
:func:`parse_instruction` turns a sentence into a :class:`ParsedInstruction` (``grasp``, ``place``
or ``pickplace``; the object phrase, the relation and the reference phrase), and
:meth:`ParsedInstruction.stages` renders each stage in the canonical wording the text tower and the
policy were trained on ("pick up the red mug", "put it left of the green plate"). So "could you grab
the red mug for me?" and "I'd like the red mug, please" reach CLIP as the same tokens as the
template, and a carrier word the compact CLIP never read ("could", "grab", "please") cannot shift
the instruction's embedding.

How a sentence is read (rules, no learned part; the held-out phrasing set in
``heldout_phrasings.yaml`` measures them):

1. Lower-case, contractions expanded, punctuation dropped.
2. The first **relation phrase** followed by at least one content word is the place relation
   (:data:`RELATION_PHRASES`: "onto", "on top of", "inside", "beside", "to the left of", "close
   to", ... each mapped to one of :data:`RELATIONS`); the words after it are the reference.
   A relation at the end of the sentence ("something to put things in") is not one.
3. With a relation and a placing verb ("put", "place", "move", "set", "drop", "bring", ...) or no
   verb at all, the sentence is a place: a pick-and-place when the words before the relation
   name an object, a place of the held object when they are only a pronoun or a generic noun
   ("it", "this", "the object"). Otherwise (e.g. "hand me the cup next to the bowl") it is a
   grasp of the object before the relation.
4. The object phrase is what is left after removing verbs, pronouns and carrier words (please,
   could you, I need, for me...). Phrases that start with "something"/"anything" are kept whole
   ("something to drink from").

What a phrase *refers to* is decided against an object vocabulary (:func:`phrase_referents`; the
policy uses the one stored with its checkpoint, the simulator's demo verdict the catalogue); a
phrase whose head word the vocabulary does not know refers to nothing, and the reason names the
word. Plain Python: the policy, the nodes, the demo and the benchmark tooling all read sentences
with this one module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RELATIONS = ("on", "in", "near", "around", "next to", "left of", "right of", "in front of", "behind")

# relation phrase -> canonical relation (longest phrase wins at a position)
RELATION_PHRASES: dict[str, str] = {
    "on": "on", "onto": "on", "on to": "on", "on top of": "on", "upon": "on", "atop": "on",
    "on the top of": "on",
    "in": "in", "into": "in", "inside": "in", "inside of": "in", "within": "in",
    "near": "near", "close to": "near", "nearby": "near", "near to": "near", "by": "near",
    "not far from": "near", "closer to": "near",
    "next to": "next to", "beside": "next to", "besides": "next to", "alongside": "next to",
    "right next to": "next to", "adjacent to": "next to", "at the side of": "next to",
    "by the side of": "next to",
    "around": "around", "somewhere around": "around", "in the vicinity of": "around",
    "left of": "left of", "to the left of": "left of", "on the left of": "left of",
    "on the left side of": "left of", "to the left side of": "left of", "at the left of": "left of",
    "left side of": "left of", "leftward of": "left of",
    "right of": "right of", "to the right of": "right of", "on the right of": "right of",
    "on the right side of": "right of", "to the right side of": "right of", "at the right of": "right of",
    "right side of": "right of", "rightward of": "right of",
    "in front of": "in front of", "before": "in front of", "ahead of": "in front of",
    "at the front of": "in front of", "to the front of": "in front of",
    "behind": "behind", "in back of": "behind", "at the back of": "behind", "to the back of": "behind",
    "back of": "behind", "beyond": "behind",
}
_REL_SEQS = sorted(((tuple(k.split()), v) for k, v in RELATION_PHRASES.items()), key=lambda kv: -len(kv[0]))

# "reach" ("reach for the X") and "release" ("release it near the Y"): found on held-out set C, which
# is therefore no longer held out (set D measures the rules since, session 7)
GRASP_VERBS = frozenset(
    "pick grasp grab take fetch get lift hand pass give hold collect retrieve snatch seize find "
    "choose select raise nab obtain reach".split())  # not want / need / like: "I want the X on the Y" places
PLACE_VERBS = frozenset(
    "put place set move drop lay leave position stack bring carry transfer relocate shift slide "
    "deposit rest park store stick pop plonk release".split())
_VERBS = GRASP_VERBS | PLACE_VERBS
# "what" / "whatever": the held object in "place what you are holding near the X" (found on held-out
# set B, which is therefore no longer held out for place; set C measures the rules since)
PRONOUNS = frozenset("it this that these those them one what whatever".split())
GENERIC_NOUNS = frozenset("object thing item stuff".split())
# words that carry no object information anywhere in a sentence
FILLER = frozenset(
    "please pls kindly could would will you your i me my we us our for need want like "
    "the a an some any now just quickly carefully gently slowly robot hey ok okay then and also "
    "up down over there here go ahead do be so thanks thank lets let us it this that these those "
    "them to from of with am is are was should must might may try trying wish wanted id i'd "
    "im have has had got get grab help mind if you'd right away real quick again immediately "
    "little bit out off yourself sure love after goes looking look appreciate".split())
# love / after / looking / look / appreciate ("I'd love the X", "I'm after the X", "I am looking for
# the X", "I'd appreciate it if you grabbed the X") and goes ("the X goes next to the Y"): carriers
# found on held-out sets B and C (session 7)
_CONTRACTIONS = {"i'd": "i would", "i'm": "i am", "i'll": "i will", "you'd": "you would",
                 "can't": "can not", "won't": "will not", "let's": "let us", "it's": "it is",
                 "that's": "that is", "there's": "there is", "don't": "do not", "i've": "i have"}
_SOMETHING = ("something", "anything", "somethin")
# "can" as a modal ("can you", "you can take": before a verb's base form), not the noun ("soda can",
# "the soda can placed behind the mug")
_MODAL_NEXT = frozenset("you i we u not".split())


class NotUnderstood(ValueError):
    """The sentence has no task the robot can read; ``reason`` says why in words a user can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedInstruction:
    """The structure of one instruction.

    Attributes:
        text: the sentence as given.
        kind: ``grasp``, ``place`` (the held object) or ``pickplace``.
        object: the object phrase to pick ("red mug", "something to drink from"); None for place.
        relation: one of :data:`RELATIONS` (place and pickplace), else None.
        reference: the reference object's phrase (place and pickplace), else None.
        determiner: ``a`` when the object was asked for as "a/an/some/any X" (any one will do).
    """

    text: str
    kind: str
    object: str | None = None
    relation: str | None = None
    reference: str | None = None
    determiner: str = "the"

    def stages(self) -> list[tuple[str, str]]:
        """(kind, canonical text) per stage: grasp and/or place, worded as the training templates."""
        out: list[tuple[str, str]] = []
        if self.kind in ("grasp", "pickplace"):
            out.append(("grasp", grasp_text(self.object or "", self.determiner)))
        if self.kind in ("place", "pickplace"):
            out.append(("place", f"put it {self.relation} the {self.reference}"))
        return out

    def phrase(self, kind: str) -> str | None:
        """The phrase a stage must ground: the object for ``grasp``, the reference for ``place``."""
        return self.object if kind == "grasp" else self.reference


def grasp_text(phrase: str, determiner: str = "the") -> str:
    """The canonical grasp sentence for an object phrase (the template family it belongs to)."""
    if phrase.split()[:1] and phrase.split()[0] in _SOMETHING:
        return f"get me {phrase}"
    if phrase.endswith(" object"):
        return f"grasp the {phrase}"
    if determiner == "a":
        return f"pick up {'an' if phrase[:1] in 'aeiou' else 'a'} {phrase}"
    return f"pick up the {phrase}"


def normalise(text: str) -> list[str]:
    """Lower-case words of a sentence: typographic quotes unified, contractions expanded, no punctuation."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for k, v in _CONTRACTIONS.items():
        t = re.sub(rf"\b{re.escape(k)}\b", v, t)
    t = re.sub(r"'s\b", "", t)
    return re.sub(r"[^\w\s]|_|\d", " ", t).split()


def _relation_at(words: list[str], i: int) -> tuple[int, str] | None:
    for seq, canon in _REL_SEQS:
        if tuple(words[i:i + len(seq)]) == seq:
            return len(seq), canon
    return None


def _is_verb(w: str) -> bool:
    """A grasp or place verb, also inflected ("lifting", "grabbing", "places", "moved")."""
    verbs = _VERBS
    if w in verbs:
        return True
    for suffix in ("ing", "ed", "s"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)]
            if stem in verbs or stem + "e" in verbs or (stem[-1:] == stem[-2:-1] and stem[:-1] in verbs):
                return True
    return False


_PREPOSITIONS = frozenset("for off from with at during while until without".split())
_ADVERBS = frozenset("really very actually maybe perhaps just still too also quite rather".split())


def _cut_trailing_pp(words: list[str]) -> list[str]:
    """The words before a prepositional phrase that follows the object.

    "the cup for a moment", "the block off the table": an object phrase is a noun phrase and ends
    at its first preposition.
    """
    seen_content = False
    for k, w in enumerate(words):
        if w in _PREPOSITIONS and seen_content:
            return words[:k]
        if w not in FILLER and not _is_verb(w) and w not in PRONOUNS:
            seen_content = True
    return words


def _content(words: list[str]) -> list[str]:
    """Object words of a span of the sentence.

    Verbs, adverbs, pronouns, carrier words and a trailing prepositional phrase are removed;
    "something ..." phrases are kept whole.
    """
    for k, w in enumerate(words):
        if w in _SOMETHING:
            tail = words[k:]
            while tail and tail[-1] in FILLER and tail[-1] not in ("with", "from", "in", "on", "to"):
                tail = tail[:-1]
            while len(tail) > 2 and tail[-2:] == ["for", "me"]:
                tail = tail[:-2]
            return tail
    words = _cut_trailing_pp(words)
    out = [w for k, w in enumerate(words)
           if w not in FILLER and not _is_verb(w) and w not in PRONOUNS and w not in _ADVERBS
           and not (w.endswith("ly") and len(w) > 4)  # adverbs: "carefully", "gently"
           and not (w == "can" and (k + 1 < len(words) and (words[k + 1] in _MODAL_NEXT
                                                             or words[k + 1] in _VERBS) or k == 0))]
    return out


def _determiner(words: list[str], content: list[str]) -> str:
    """``a`` when the first content word is preceded by a/an/some/any."""
    if not content:
        return "the"
    try:
        k = words.index(content[0])
    except ValueError:
        return "the"
    return "a" if k > 0 and words[k - 1] in ("a", "an", "some", "any", "another") else "the"


def parse_instruction(text: str) -> ParsedInstruction:
    """Read the task structure of an English instruction (see the module docstring).

    Raises:
        NotUnderstood: no object and no relation could be read at all (empty of content words).
    """
    words = normalise(text)
    if not words:
        raise NotUnderstood("the instruction has no words; say what to pick up, e.g. 'pick up the red mug'")
    rel = None
    for k in range(1, len(words)):
        hit = _relation_at(words, k)
        if hit is None:
            continue
        has_reference = bool(_content(words[k + hit[0]:]))
        # a relation counts only with a reference after it, and not inside "something to put things in"
        inside_function = any(w in _SOMETHING for w in words[:k]) and words[k - 1] in ("things", "stuff")
        if has_reference and not inside_function:
            rel = (k, hit[0], hit[1])
            break
        if not has_reference and not any(w in _SOMETHING for w in words) and set(words[:k]) & PLACE_VERBS:
            raise _no_reference(hit[1])
    verbs_before = set(words[: rel[0]] if rel else words)
    has_place_verb = bool(verbs_before & PLACE_VERBS)
    has_grasp_verb = bool(verbs_before & GRASP_VERBS) or "pick" in verbs_before
    if rel is not None and (has_place_verb or not has_grasp_verb):
        k, n, relation = rel
        before, after = words[:k], words[k + n:]
        reference = " ".join(_strip_generic(_content(after)))
        obj = _strip_generic(_content(before))
        if not reference:
            raise _no_reference(relation)
        if obj:
            return ParsedInstruction(text, "pickplace", " ".join(obj), relation, reference,
                                     _determiner(before, obj))
        return ParsedInstruction(text, "place", None, relation, reference)
    scope = words[: rel[0]] if rel is not None else words
    obj = _strip_generic(_content(scope)) or _strip_generic(_content(words))
    if not obj:
        raise NotUnderstood(f"no object named in {text!r}; say which object, e.g. 'pick up the red mug'")
    return ParsedInstruction(text, "grasp", " ".join(obj), determiner=_determiner(scope, obj))


def _no_reference(relation: str) -> NotUnderstood:
    return NotUnderstood(f"no reference object after {relation!r}; say where, e.g. "
                         f"'put it {relation} the green plate'")


def _strip_generic(words: list[str]) -> list[str]:
    """Drop a bare generic noun ("the object"); keep one after a descriptor ("the red round object")."""
    return [] if all(w in GENERIC_NOUNS for w in words) else words


def _contains(words: list[str], phrase: str) -> bool:
    seq = phrase.split()
    return any(words[i:i + len(seq)] == seq for i in range(len(words) - len(seq) + 1))


def phrase_referents(phrase: str, vocabulary: list[dict[str, str]]) -> tuple[list[int], str]:
    """Which vocabulary objects an object phrase describes, and, when none, why (for the user).

    Rules, first that applies wins: "something/anything to {function}" (longest function first) or
    "something {colour|shape}"; "{colour} {shape} object"; an object name (longest); "{colour}
    {shape}"; a category (longest), narrowed by a colour word when one is given; a colour or shape
    alone with nothing else ("the red one"). A phrase whose head word (its last) the vocabulary does
    not know is never grounded on its other words: "purple elephant" is refused, not read as
    "something purple".

    Returns:
        (indices into ``vocabulary``, "" when grounded else the reason).
    """
    words = phrase.lower().split()
    if not words:
        return [], "the instruction names no object"
    known = {w for v in vocabulary for key in ("name", "colour", "shape", "category", "function")
             for w in v[key].split()}
    generic = {"object", "one", "thing", "item", "something", "anything"}
    colours = sorted({v["colour"] for v in vocabulary})
    shapes = sorted({v["shape"] for v in vocabulary})
    colour = next((c for c in colours if c in words), None)
    shape = next((sh for sh in shapes if sh in words), None)
    if words[0] in ("something", "anything"):
        words = ["something", *words[1:]]
        for f in sorted({v["function"] for v in vocabulary}, key=len, reverse=True):
            if _contains(words, f):
                return [i for i, v in enumerate(vocabulary) if v["function"] == f], ""
    elif words[-1] not in known and words[-1] not in generic:
        unknown = [w for w in words if w not in known and w not in generic]
        return [], (f"I don't know what {phrase!r} is: {', '.join(repr(w) for w in unknown)} "
                    f"{'is' if len(unknown) == 1 else 'are'} not in my vocabulary")
    names = [(len(v["name"]), i) for i, v in enumerate(vocabulary) if _contains(words, v["name"])]
    # "the orange round object" is the colour, not the fruit: colour + shape before names there
    if colour and shape and (words[-1] in generic or not names):
        refs = [i for i, v in enumerate(vocabulary) if (v["colour"], v["shape"]) == (colour, shape)]
        return refs, "" if refs else f"I know no {colour} {shape} object"
    if names:
        best = max(names)[0]
        return [i for n, i in names if n == best], ""
    for c in sorted({v["category"] for v in vocabulary}, key=len, reverse=True):
        if _contains(words, c):
            refs = [i for i, v in enumerate(vocabulary) if v["category"] == c]
            if colour:
                refs = [i for i in refs if vocabulary[i]["colour"] == colour]
            return refs, "" if refs else f"I know no {colour} {c}"
    rest = [w for w in words if w not in generic and w not in (colour, shape)]
    if not rest and (colour or shape):
        key, val = ("colour", colour) if colour else ("shape", shape)
        return [i for i, v in enumerate(vocabulary) if v[key] == val], ""
    return [], f"{phrase!r} does not describe any object I know"
