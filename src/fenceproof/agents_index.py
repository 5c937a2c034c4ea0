"""The always-on index: error phrases to rule files, small enough to paste into a project's AGENTS.md or CLAUDE.md.

An agent loads the skill only when a task matches its description; a project that pastes this file into its
AGENTS.md (Codex, Cursor, Copilot, ...) or CLAUDE.md (Claude Code) keeps the way from an error to its rule in
context all the time, for at most ``AGENTS_INDEX_MAX_CHARS`` characters. ``fenceproof index`` writes it to
``skills/python-backend/AGENTS-index.md``; ``fenceproof index --check`` fails when it is stale.

Each rule gets one line in the SKILL.md order: its file and the key phrases of its errors
(``index_text.key_phrase``: words Python prints verbatim, so a plain text search of an error finds them). Every
rule's first phrase goes in; further phrases are added round by round, first errors first, while they fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fenceproof.index_text import DANGLING, code, key_phrase

if TYPE_CHECKING:
    from fenceproof.index import Rule

AGENTS_INDEX = "AGENTS-index.md"
AGENTS_INDEX_MAX_CHARS = 1_500
# Where the README's install puts a skill (its folder name appended); the file says how to change it.
INSTALL_ROOT = ".agents/skills"
INSTALLED_AT = f"{INSTALL_ROOT}/python-backend"


def header(skill: str) -> str:
    """The file's first lines: what it is, where the rules are, how to adjust the path, the fallback."""
    at = f"{INSTALL_ROOT}/{skill}"
    return f"""## {skill} skill: errors to rules

<!-- AGENTS-index.md of the {skill} skill, written by `fenceproof index` -->
On one of these errors, read its rule, `{at}/rules/<file>`, before changing code (skill
installed elsewhere? change the path). Other errors: `python3 {at}/scripts/find_rule.py "<error>"`.

"""


# The shortest a first phrase gets when every rule's first phrase must be cut to fit the limit.
PHRASE_MIN_CHARS = 12


def phrases(rule: Rule) -> list[str]:
    """The rule's errors as key phrases, in frontmatter order, without repeats or errors that have none."""
    found = (key_phrase(e) for e in rule.errors)
    return list(dict.fromkeys(p for p in found if p))


def _line(rule: Rule, chosen: list[str]) -> str:
    return f"- {rule.file}: {', '.join(code(p) for p in chosen)}" if chosen else f"- {rule.file}"


def _cut(phrase: str, limit: int) -> str:
    """The phrase's first words, at most ``limit`` characters (at least its first word): still a substring."""
    words = phrase.split(" ")
    while len(words) > 1 and (len(" ".join(words)) > limit or words[-1].lower() in DANGLING):
        words.pop()
    return " ".join(words).rstrip(" ,;:")


def render(rules: Sequence[Rule], skill: str = "python-backend", limit: int = AGENTS_INDEX_MAX_CHARS) -> str:
    """The file's text: the header, then one line per rule, within ``limit`` characters when it can be.

    Every rule's first phrase goes in, cut shorter (never below ``PHRASE_MIN_CHARS``) while they do not fit;
    then further phrases, round by round, each where it still fits.
    """
    candidates = [phrases(r) for r in rules]
    chosen = [c[:1] for c in candidates]

    def text() -> str:
        return header(skill) + "".join(_line(r, c) + "\n" for r, c in zip(rules, chosen, strict=True))

    longest = max((len(c[0]) for c in chosen if c), default=0)
    while len(text()) > limit and longest > PHRASE_MIN_CHARS:
        longest -= 2
        chosen = [[_cut(c[0], longest)] if c else [] for c in candidates]
    depth = 1
    while any(len(c) > depth for c in candidates):
        for k, options in enumerate(candidates):
            if len(options) > depth:
                chosen[k].append(options[depth])
                if len(text()) > limit:
                    chosen[k].pop()
        depth += 1
    return text()
