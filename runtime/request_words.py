"""What a user's request says about a train run: AutoML switched off, and an epoch count (pure, no I/O).

The words are read with a small grammar over clauses, not a window of words:

* ``request := clause (boundary clause)*``. Boundaries are ``. ; ! ? ,``, a line break and the
  words ``but however though although and or then so``. A parenthetical, ``( ... )`` or
  ``[ ... ]``, is a clause of its own, and the words around it join up again: in
  "Prepare (don't submit) the same plain training" the clauses are "don't submit" and "prepare the
  same plain training". Quotes are only marks: ``don't "disable AutoML"`` reads as
  ``don't disable AutoML``.
* An *off phrase* (:data:`OFF_PHRASES`) inside a clause switches AutoML off, unless it is negated.
* ``negated := NEGATOR BRIDGE* PHRASE`` inside one clause. A negator ("don't", "do not", "not",
  "never", "no" ...) binds to the next verb phrase: it reaches the off phrase only across
  *bridge* words ("I don't want you to disable AutoML": want, you, to). Any other word takes the
  negation for itself: in "don't submit the plain training" it binds to "submit", and
  "plain training" still means off.

Case, punctuation and hyphens do not matter ("Auto-ML", "hyper-parameter"). The first phrase that
is not negated decides; :func:`find_off_phrase` returns it as written after normalising.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_TUNING = r"(?:automl|hpo|hyperparameter (?:search|tuning|optimi[sz]ation|sweep)s?|tuning|sweeps?)"
TUNING_WORDS = "AutoML, HPO, hyperparameter search / tuning / optimisation / sweep, tuning, sweep"


@dataclass(frozen=True)
class OffPhrase:
    """One family of phrases that switch AutoML off; ``example`` and ``forms`` are what SKILL.md lists."""

    example: str
    forms: str
    pattern: str


OFF_PHRASES: tuple[OffPhrase, ...] = (
    OffPhrase("turn off AutoML", "turn / switch / shut off + tuning word",
              rf"\b(?:turn|turning|switch|switching|shut|shutting) off (?:the )?{_TUNING}"),
    OffPhrase("turn AutoML off", "turn / switch / shut / set / keep + AutoML or HPO + off",
              r"\b(?:turn|turning|switch|switching|shut|shutting|set|setting|keep|keeping) "
              r"(?:the )?(?:automl|hpo) off\b"),
    OffPhrase("disable AutoML", "disable / deactivate + tuning word",
              rf"\b(?:disable|disabling|deactivate|deactivating) (?:the )?{_TUNING}"),
    OffPhrase("AutoML off", "AutoML or HPO (+ policy) + off / disabled / false, e.g. `automl: off`",
              r"\b(?:automl|hpo)(?: policy)? (?:off|disabled|false)\b"),
    OffPhrase("without AutoML", "without (any / the / using / doing / running) + tuning word",
              rf"\bwithout (?:any |the |using |doing |running )?{_TUNING}"),
    OffPhrase("no HPO", "no (more) + tuning word: no AutoML, no hyperparameter search, no tuning",
              rf"\bno (?:more )?{_TUNING}"),
    OffPhrase("skip AutoML", "skip / bypass / avoid (the) + tuning word",
              rf"\b(?:skip|skipping|bypass|bypassing|avoid|avoiding) (?:the )?{_TUNING}"),
    OffPhrase("don't use AutoML", "don't / do not / never (want / need (to)) (use / run / do / with) + tuning word",
              rf"\b(?:dont|do not|does not|doesnt|never) (?:(?:want|need)(?: to)? )?"
              rf"(?:use |run |do |using |with )?(?:any |the )?{_TUNING}"),
    OffPhrase("not with AutoML", "not with / using / via / through + tuning word",
              rf"\bnot (?:with|using|via|through) (?:any |the )?{_TUNING}"),
    OffPhrase("plain training", "plain / normal / regular / standard / simple / vanilla / direct / ordinary training",
              r"\b(?:plain|normal|regular|standard|simple|vanilla|direct|ordinary) training\b"),
    OffPhrase("train normally", "train (it) normally / directly / plainly",
              r"\btrain (?:it )?(?:normally|directly|plainly)\b"),
)
_OFF_RE = re.compile("|".join(f"(?:{p.pattern})" for p in OFF_PHRASES))

NEGATORS: tuple[tuple[str, ...], ...] = tuple(tuple(n.split()) for n in (
    "dont", "do not", "does not", "doesnt", "didnt", "did not", "not", "never", "no", "shouldnt", "should not",
    "wont", "will not", "wouldnt", "would not", "cannot", "cant", "can not", "mustnt", "must not",
))
BRIDGE_WORDS = frozenset(
    "i you we they he she it me us them to want wants wanted wanna need needs needed like would really "
    "ever even actually please just the a any be try going gonna have".split()
)
_BOUNDARY_WORDS = r"\b(?:but|however|though|although|and|or|then|so)\b"
_PARENTHETICAL = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]|\{([^{}]*)\}")
_SPLIT = re.compile(rf"[.;!?,\n]+|{_BOUNDARY_WORDS}")

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
                 "fifty": 50, "hundred": 100}
_COUNT = rf"(\d+|{'|'.join(_NUMBER_WORDS)})"
_EPOCHS = re.compile(rf"(?<!every )(?<!each )\b{_COUNT} (?:more |full |training )?epochs?\b|\bepochs? {_COUNT}\b")


def normalize(text: str) -> str:
    """Lower case, ``don't`` -> ``dont``, quotes dropped, hyphens and other marks -> spaces.

    Brackets and clause punctuation (``. ; ! ? ,`` and line breaks) are kept for :func:`clauses`.
    """
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"(?<=[a-z])'(?=[a-z])", "", text)  # don't -> dont, before quotes go
    text = re.sub(r"[^a-z0-9.;!?,\n()\[\]{}]+", " ", text)
    text = re.sub(r"\bauto ml\b", "automl", text)
    return re.sub(r"\bhyper ?parameters?\b", "hyperparameter", text)


def clauses(request: str) -> list[str]:
    """The request's clauses (see the module docstring), normalised, single-spaced, empty ones dropped."""
    text = normalize(request)
    inner: list[str] = []
    while True:  # innermost parentheticals first, so nesting works
        found = _PARENTHETICAL.search(text)
        if found is None:
            break
        inner.append(next(g for g in found.groups() if g is not None))
        text = text[:found.start()] + " " + text[found.end():]
    text = re.sub(r"[()\[\]{}]", " ", text)  # an unbalanced bracket is only a mark
    parts = [*_SPLIT.split(text)] + [part for piece in inner for part in _SPLIT.split(piece)]
    return [" ".join(part.split()) for part in parts if part and part.strip()]


def is_negated(words_before: list[str]) -> bool:
    """Whether the words before a phrase (same clause) end in a negator, bridge words aside."""
    words = list(words_before)
    while words and words[-1] in BRIDGE_WORDS:
        words.pop()
    return any(len(words) >= len(neg) and tuple(words[-len(neg):]) == neg for neg in NEGATORS)


def find_off_phrase(request: str | None) -> str | None:
    """The first phrase of ``request`` that switches AutoML off and is not negated, or None."""
    if not request:
        return None
    for clause in clauses(request):
        for match in _OFF_RE.finditer(clause):
            if not is_negated(clause[: match.start()].split()):
                return match.group(0).strip()
    return None


def requested_epochs(request: str | None) -> int | None:
    """An epoch count the request names ("train for 2 epochs", "epochs: 5"), else None.

    "every 2 epochs" / "each 2 epochs" (an interval, not a count) is not one.
    """
    if not request:
        return None
    found = _EPOCHS.search(" ".join(normalize(request).split()))
    if found is None:
        return None
    word = found.group(1) or found.group(2)
    count = _NUMBER_WORDS.get(word) or int(word)
    return count if count >= 1 else None
