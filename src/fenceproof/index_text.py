"""Short forms of a rule's frontmatter for the generated indexes: inline code, trimmed text, an error's key phrase.

The indexes have fixed budgets (SKILL.md's body, the always-on AGENTS-index.md), so every string that goes into
them is cut here, the same way: at a clause when the first clause fits, else at a word, marked with an ellipsis.
An error's *key phrase* is different: it is never marked, because it must stay a substring of the error as
Python prints it, so that an agent holding a traceback finds it by plain text search.
"""

from __future__ import annotations

import builtins
import re

# Module paths in front of an exception class: "sqlalchemy.exc.MissingGreenlet" -> "MissingGreenlet".
_QUALIFIER = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+(?=[A-Z])")
# The DBAPI exception SQLAlchemy wraps, named again after the colon: "(sqlalchemy.dialects....Error) ".
_WRAPPED = re.compile(r"\((?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*\) ")
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")
_ERRNO = re.compile(r"^\[Errno \d+\] ")
# A log level in front of a server's message: "ERROR:    Exception in ASGI application", "FATAL:  terminating".
_LOG_LEVEL = re.compile(r"^(?:CRITICAL|DEBUG|ERROR|FATAL|INFO|LOG|PANIC|WARNING)\s*:\s+")
_CLASS = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Warning|Group|Timeout|Greenlet|Exit|Interrupt)): ?(.*)$"
)
_BARE_CLASS = re.compile(r"^(?:[A-Za-z_]\w*\.)*([A-Z]\w+)$")
_LINT_CODE = re.compile(r"^([A-Z]+[0-9]+)\b")
# A word that changes from one run to the next, or holds a name from the example: the key phrase stops before it.
_VARIABLE = re.compile(r"[0-9'\"`<>]")
# Exception classes so common that the message, not the class, identifies the failure.
GENERIC_CLASSES = frozenset(
    {n for n in dir(builtins) if n.endswith(("Error", "Exception", "Warning", "Group"))}
    | {
        "DBAPIError",
        "InterfaceError",
        "InvalidRequestError",
        "ProgrammingError",
        "OperationalError",
        "SAWarning",
    }
)
# Where shortened text prefers to end: before a word that starts a new part of the sentence, when that keeps
# at least this share of the room.
_JOINT = re.compile(r" (?:after|although|and|because|but|or|since|so|then|when|where|while|with)\b")
JOINT_MIN_SHARE = 0.6
KEY_PHRASE_MAX_CHARS = 44
_MIN_WORDS = 3
# Words a cut phrase must not end on.
DANGLING = frozenset(
    "a after although an and as at because but by due for from in into of on or since so than that the then to"
    " when where which while with within".split()
)


def code(text: str) -> str:
    """Inline code that survives backticks inside the text."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters: the first clause when it fits, else cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    clause = re.split(r"; | \(|\. ", text, maxsplit=1)[0].rstrip(" ,;:.")
    if len(clause) <= limit:
        return clause
    cut = text[: max(limit - 1, 1)]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    joints = [m.start() for m in _JOINT.finditer(cut) if m.start() >= JOINT_MIN_SHARE * limit]
    if joints:  # end where a clause ends rather than mid-phrase
        cut = cut[: joints[-1]]
    words = cut.rstrip(" ,;:.").split(" ")
    while len(words) > 1 and words[-1].lower() in DANGLING:
        words.pop()
    return " ".join(words).rstrip(" ,;:.") + "…"


def plain_error(error: str) -> str:
    """The error without what every reader skips: module paths, the wrapped DBAPI class, the background link."""
    text = _BACKGROUND.sub("", " ".join(error.split()))
    return _QUALIFIER.sub("", _WRAPPED.sub("", text))


def _stable_runs(message: str) -> list[str]:
    """The runs of words of the message's first clause between words that vary from run to run (numbers,
    quoted names), each cut to the max length; the first run is the one that opens the message."""
    message = _ERRNO.sub("", message)
    message = re.split(r": |; |\. | \(", message, maxsplit=1)[0]
    runs: list[list[str]] = [[]]
    for word in message.split():
        if _VARIABLE.search(word):
            runs.append([])
        else:
            runs[-1].append(word)
    return [_trimmed(" ".join(run)) for run in runs]


def _trimmed(phrase: str) -> str:
    """At most the max length, cut at a word: its first comma-separated clause of three or more words when it
    has one; never ending on a word that leads on (``of``, ``from``, ...)."""
    clauses = [c for c in phrase.split(", ") if len(c.split()) >= _MIN_WORDS]
    if clauses:
        phrase = clauses[0]
    if len(phrase) > KEY_PHRASE_MAX_CHARS:
        phrase = phrase[: KEY_PHRASE_MAX_CHARS + 1].rsplit(" ", 1)[0]
    words = phrase.rstrip(" ,;:.!").split()
    while words and words[-1].lower().rstrip(",;:") in DANGLING:
        words.pop()
    return " ".join(words).rstrip(" ,;:.!")


def key_phrase(error: str) -> str | None:
    """A short part of ``error`` that names the failure and stays the same from run to run; None if none is.

    The text Python prints is searched for it verbatim, so it is always a substring of ``error``:
    a ruff code (``ASYNC251``); else the message's opening words when three or more are stable (``Event loop
    is closed``); else the class when it is specific (``MissingGreenlet``, ``DependencyScopeError``); else opening
    words of some length (``prepared statement``); else three stable words later in the message.
    """
    text = _WRAPPED.sub("", _BACKGROUND.sub("", " ".join(error.split())))
    text = _LOG_LEVEL.sub("", text)
    lint = _LINT_CODE.match(text)
    if lint:
        return lint.group(1)
    found = _CLASS.match(text)
    bare = _BARE_CLASS.match(text)
    if found:
        cls, message = found.group(1).rsplit(".", 1)[-1], found.group(2)
    elif bare:
        cls, message = bare.group(1), ""
    else:
        cls, message = "", text
    specific = cls if cls and cls not in GENERIC_CLASSES else ""
    runs = _stable_runs(message) if message else [""]
    if len(runs[0].split()) >= _MIN_WORDS:
        return runs[0]
    if specific:
        return specific
    if len(runs[0]) >= 12:
        return runs[0]
    later = [r for r in runs if len(r.split()) >= _MIN_WORDS]
    if later:
        return later[0]
    return None  # only a generic class, or a few common words: not worth a place in the always-on index
