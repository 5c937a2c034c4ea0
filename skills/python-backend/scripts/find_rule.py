#!/usr/bin/env python3
"""Find the rules of this skill that match an error message, a traceback or a topic.

    python3 scripts/find_rule.py "sqlalchemy.exc.MissingGreenlet: greenlet_spawn has not been called"
    python3 scripts/find_rule.py --limit 5 "pool sizing"
    some-command 2>&1 | python3 scripts/find_rule.py -

Prints the best matching rule files (path and title), best first. It reads the rule files in ``../rules``
next to this script, ranks them by their titles, tags, symptoms, error strings and headings, and ignores what
differs between two runs of the same failure: object addresses, numbers, quotes, file paths, task names.
When no rule scores at least ``MIN_SCORE`` it prints "no rule matches" on standard error and exits 1.
Standard library only; runs on Python 3.8 and later.
"""

from __future__ import annotations

import argparse
import builtins
import math
import os
import re
import sys
from collections.abc import Sequence

RULES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rules")

# Field weights: where a query word is found says how much it points at a rule.
WEIGHTS = {"errors": 3.0, "title": 3.0, "tags": 3.0, "symptoms": 2.0, "headings": 1.5, "body": 0.5}
# An error string whose (idf-weighted) words are mostly in the query scores as a phrase, on top of its words.
PHRASE_MIN_COVERAGE = 0.6
PHRASE_WEIGHT = 4.0
# Rules scoring under this fraction of the best one are noise, not candidates.
RELATIVE_CUTOFF = 0.15
# Scores are in units of one rare word: a query word found in one rule's errors, title or tags alone scores
# 1.0. A rule must score at least MIN_SCORE, more than one rare word, to be printed. Under it the text shares
# only words common to many rules, or a single word of one rule: KeyError: 'foo' scores 0.1, a missing numpy
# 0.6, Django's "no such table" 1.0. The errors and symptoms the rules list, and real tracebacks of them,
# score 1.5 and more with 12 rules; the most generic listed symptom scored 1.14 with 18
# (tests/test_find_rule.py).
MIN_SCORE = 1.1

STOP_WORDS = frozenset(
    """a an and are as at be by can do does for from has have how i if in into is it its my no not of on or
    so that the their then there this to was were what when where which while why will with you your
    file line lines py python python3 usr lib local site packages site-packages dist venv home app src self
    traceback most recent call last during handling above exception another occurred direct cause following
    error errno""".split()
)
# "error" is a stop word because every error string has it; class names keep it (CancelledError). "errno"
# too: every OSError prints "[Errno N]".

# Builtin exception classes name a kind of failure, not this failure: ValueError in a query says little. Their
# name counts half, and its parts (module, found) not at all.
GENERIC_CLASSES = frozenset(
    name.lower() for name in dir(builtins) if name.endswith(("Error", "Exception", "Warning", "Group"))
)
GENERIC_CLASS_FACTOR = 0.5

# Traceback frames: the "File ..., line N, in f" line, the source line under it and its ^^^ markers. Their
# words are the code that ran (protocol, prepared_stmt, future), not the failure, and they outnumber the
# error lines.
_FRAME = re.compile(r'^[\s|]*File "[^"]*", line \d+')
_MARKERS = re.compile(r"^[\s|]*[\^~]+[\s^~]*$")
# A warning printed beside a traceback ("sys:1: RuntimeWarning: coroutine 'sleep' was never awaited" after
# "RuntimeError: Event loop is closed") is a consequence of the exception: the exception is the failure.
_TRACEBACK = re.compile(r"^[\s|]*Traceback \(most recent call last\):", re.MULTILINE)
_WARNING_LINE = re.compile(r"^\S*:\d+: \w*Warning: ")

_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_N_PLUS_ONE = re.compile(r"\bn\s*(?:\+|-?\s*plus\s*-?)\s*(?:1|one)\b", re.IGNORECASE)  # N+1, n-plus-one
_WORD = re.compile(r"[A-Za-z0-9_]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


# ---------------------------------------------------------------------------------------------------------
# Frontmatter: the small YAML subset rule files use (scalars, quoted strings, block and flow lists).


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/"}
        return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), inner)
    return re.sub(r"\s+#.*$", "", value)  # a plain scalar may end with a comment


def _flow_list(value: str) -> list[str]:
    items, current, quote = [], "", ""
    for ch in value.strip()[1:-1]:
        if quote:
            current += ch
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
            current += ch
        elif ch == ",":
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    return [_unquote(i) for i in items if i.strip()]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse_frontmatter(text: str) -> tuple[dict[str, object], str]:
    """Return (frontmatter as a dict of strings and lists of strings, the body after it)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return {}, text
    body = "\n".join(lines[end + 1 :])
    data: dict[str, object] = {}
    block = lines[1:end]
    i = 0
    while i < len(block):
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:(?:\s+(.*))?$", block[i])
        i += 1
        if not m:
            continue
        key, value = m.group(1), (m.group(2) or "").strip()
        nested = []  # the indented lines (or list items) that belong to this key
        while i < len(block) and (not block[i].strip() or block[i][0] in " -"):
            nested.append(block[i])
            i += 1
        if value.startswith("["):
            data[key] = _flow_list(value)
        elif value[:1] in (">", "|"):
            joiner = "\n" if value[0] == "|" else " "
            data[key] = joiner.join(n.strip() for n in nested if n.strip())
        elif value:  # a scalar, possibly folded over several indented lines
            data[key] = _unquote(" ".join([value] + [n.strip() for n in nested if n.strip()]))
        elif any(n.lstrip().startswith("- ") or n.strip() == "-" for n in nested):
            items: list[str] = []
            for n in nested:
                stripped = n.strip()
                if stripped.startswith("-") and _indent(n) <= _indent(nested[0]):
                    items.append(stripped[1:].strip())
                elif stripped and items:
                    items[-1] += " " + stripped  # continuation of a long item
            data[key] = [_unquote(item) for item in items]
        else:
            data[key] = ""  # a nested mapping (e.g. metadata) is not needed here
    return data, body


# ---------------------------------------------------------------------------------------------------------
# Words: what two runs of the same failure have in common.


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"  # queries -> query
    for suffix in ("ations", "ation", "ings", "ing", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]  # cancelled, cancelling -> cancel
    return word


def words(text: str) -> list[str]:
    """The normalised words of a text, in order: addresses, numbers, quotes and path separators dropped."""
    text = _HEX.sub(" ", text)
    text = _UUID.sub(" ", text)
    text = _N_PLUS_ONE.sub(" nplusone ", text)
    out: list[str] = []
    for raw in _WORD.findall(text):
        parts = [raw] + [p for piece in raw.split("_") for p in _CAMEL.findall(piece)]
        if raw.lower() in GENERIC_CLASSES:
            parts = [raw]  # ModuleNotFoundError is one generic word, not "module" and "found"
        seen = set()
        for part in parts:
            word = part.lower()
            if word.isdigit() or len(word) < 2 or word in STOP_WORDS or word in seen:
                continue
            seen.add(word)
            stem = _stem(word)
            if stem not in STOP_WORDS:
                out.append(stem)
    return out


# ---------------------------------------------------------------------------------------------------------
# Ranking.


class Rule:
    def __init__(self, path: str, meta: dict[str, object], body: str) -> None:
        self.path = path
        self.title = str(meta.get("title") or os.path.basename(path))
        self.errors = _as_list(meta.get("errors"))
        headings = re.findall(r"^#{1,6}\s+(.+)$", _without_code(body), re.MULTILINE)
        topic = os.path.splitext(os.path.basename(path))[0].replace("-", " ")  # asyncio-concurrency-limits.md
        texts = {
            "title": [self.title, topic],
            "tags": _as_list(meta.get("tags")),
            "symptoms": _as_list(meta.get("symptoms")),
            "errors": self.errors,
            "headings": headings,
            "body": [body],
        }
        self.fields: dict[str, set[str]] = {f: {w for t in ts for w in words(t)} for f, ts in texts.items()}
        self.error_words: list[set[str]] = [set(words(e)) for e in self.errors]
        self.all_words: set[str] = set().union(*self.fields.values())


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


def _without_code(body: str) -> str:
    return re.sub(r"^(```|~~~).*?^\1[ \t]*$", "", body, flags=re.MULTILINE | re.DOTALL)


def load_rules(rules_dir: str = RULES_DIR) -> list[Rule]:
    rules = []
    for name in sorted(os.listdir(rules_dir)):
        if name.endswith(".md") and not name.startswith("_"):
            path = os.path.join(rules_dir, name)
            with open(path, encoding="utf-8") as handle:
                meta, body = parse_frontmatter(handle.read())
            rules.append(Rule(path, meta, body))
    return rules


def _idf(rules: Sequence[Rule]) -> dict[str, float]:
    n = len(rules)
    counts: dict[str, int] = {}
    for rule in rules:
        for word in rule.all_words:
            counts[word] = counts.get(word, 0) + 1
    return {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in counts.items()}


def score(rule: Rule, query: set[str], idf: dict[str, float]) -> float:
    """How strongly a query points at a rule: its words by field weight and rarity, plus error phrases."""
    total = 0.0
    for word in query:
        weight = max((WEIGHTS[f] for f, ws in rule.fields.items() if word in ws), default=0.0)
        if word in GENERIC_CLASSES:
            weight *= GENERIC_CLASS_FACTOR
        total += weight * idf.get(word, 0.0)
    best_phrase = 0.0
    for error in rule.error_words:
        if not error:
            continue
        rarity = sum(idf.get(w, 0.0) + 0.1 for w in error)
        matched = sum(idf.get(w, 0.0) + 0.1 for w in error & query)
        coverage = matched / rarity
        if coverage >= PHRASE_MIN_COVERAGE:
            best_phrase = max(best_phrase, coverage * coverage * matched)
    return total + PHRASE_WEIGHT * best_phrase


def query_text(text: str) -> str:
    """The parts of pasted text that describe the failure: traceback frames removed, and the warnings printed
    beside a traceback."""
    kept: list[str] = []
    frame_column = -1  # where the last frame line's "File" starts; the source line under it is indented more
    traceback = bool(_TRACEBACK.search(text))
    for line in text.splitlines():
        if traceback and _WARNING_LINE.match(line):
            continue
        if _FRAME.match(line):
            frame_column = line.index("File")
            continue
        column = len(line) - len(line.lstrip(" |+"))
        if _MARKERS.match(line) or (column > frame_column >= 0 and not _names_an_exception(line)):
            continue
        frame_column = -1
        kept.append(line)
    return "\n".join(kept)


def _names_an_exception(line: str) -> bool:
    """A line that names an exception, even when indented (exception groups print them so)."""
    return bool(re.match(r"^[\s|]*[A-Za-z_][\w.]*(?:Error|Exception|Warning|Group|Greenlet|Exit)\b", line))


def rare_word(rules: Sequence[Rule]) -> float:
    """The raw score of one query word found in the strongest field of one rule only: the unit of scores."""
    n = len(rules)
    return max(WEIGHTS.values()) * math.log(1 + (n - 1 + 0.5) / 1.5) if n else 1.0


def scores(text: str, rules: Sequence[Rule]) -> list[tuple[float, Rule]]:
    """Every rule with its score for ``text`` in rare-word units, best first (ties by file name)."""
    query = set(words(query_text(text)))
    idf = _idf(rules)
    unit = rare_word(rules)
    scored = [(score(rule, query, idf) / unit, rule) for rule in rules]
    return sorted(scored, key=lambda s: (-s[0], os.path.basename(s[1].path)))


def rank(text: str, rules: Sequence[Rule], min_score: float = MIN_SCORE) -> list[tuple[float, Rule]]:
    """The rules that match ``text``, best first: at least ``min_score``, and not far behind the best."""
    scored = scores(text, rules)
    best = scored[0][0] if scored else 0.0
    return [s for s in scored if s[0] > 0 and s[0] >= min_score and s[0] >= RELATIVE_CUTOFF * best]


def _display(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the rules of this skill that best match an error message, a traceback or a topic.",
        epilog=f"Scores count rare words: a word found only in one rule's errors, title or tags is 1.0. A rule "
        f"is printed when it scores at least --min-score (default {MIN_SCORE}). Exit status: 0 when a rule "
        "matches; 1 when none does (it prints 'no rule matches' on standard error: read the index in SKILL.md, "
        "or pass the exact error line); 2 when the rules folder is missing.",
    )
    parser.add_argument("query", nargs="+", help="error text or topic; '-' reads it from standard input")
    parser.add_argument("--limit", type=int, default=3, help="how many rules to print (default 3)")
    parser.add_argument("--rules", default=RULES_DIR, help="the rules folder (default: ../rules)")
    parser.add_argument("--scores", action="store_true", help="print each rule's score too")
    parser.add_argument(
        "--min-score", type=float, default=MIN_SCORE, help=f"the least score printed (default {MIN_SCORE})"
    )
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.query == ["-"] else " ".join(args.query)
    if not os.path.isdir(args.rules):
        print("no rules folder at " + args.rules, file=sys.stderr)
        return 2
    rules = load_rules(args.rules)
    ranked = rank(text, rules, args.min_score)[: max(args.limit, 1)]
    if not ranked:
        best = scores(text, rules)[0][0] if rules else 0.0
        print(
            f"no rule matches (best score {best:.2f}, under {args.min_score:g}); read the rule index in "
            "SKILL.md, or pass the exact error line.",
            file=sys.stderr,
        )
        return 1
    for value, rule in ranked:
        prefix = f"{value:7.2f}  " if args.scores else ""
        print(f"{prefix}{_display(rule.path)}  {rule.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
