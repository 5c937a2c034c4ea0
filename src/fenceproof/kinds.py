"""Every fence language and every ``expect`` kind, in one place: how each is parsed, checked, run, judged
and described.

A block's language kind is decided once, when the block is parsed (``blocks.extract`` sets ``Block.kind``);
every later stage (lint, run, prove, report, docs) asks this module instead of comparing language names. To add
an ``expect`` kind, add an ``ExpectKind`` to ``EXPECT_KINDS`` here and its form to ``schemas/fence.schema.json``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

Outcome = Literal["passed", "proved", "linted", "skipped", "checked", "failed"]
# What the fence languages turn into. "python" and "sql" run in the document's worker; "output" is compared
# with what the Python block before it printed; the rest are checked here or only shown.
KindName = Literal["python", "sql", "json", "toml", "yaml", "shell", "output", "text"]


# -- languages ---------------------------------------------------------------------------------------------


def _check_json(code: str) -> str | None:
    try:
        json.loads(code)
    except ValueError as error:
        return f"not valid json: {error}"
    return None


def _check_toml(code: str) -> str | None:
    try:
        tomllib.loads(code)
    except ValueError as error:
        return f"not valid toml: {error}"
    return None


def _check_yaml(code: str) -> str | None:
    try:
        yaml.safe_load(code)
    except yaml.YAMLError as error:
        return f"not valid yaml: {error}"
    return None


def _check_shell(code: str) -> str | None:
    bash = shutil.which("bash")
    if bash is None:
        return None
    done = subprocess.run([bash, "-n"], input=code, capture_output=True, text=True, check=False)
    return f"bash -n: {done.stderr.strip()}" if done.returncode else None


@dataclass(frozen=True)
class Language:
    """One kind of fence, and what each stage does with it."""

    kind: KindName
    aliases: tuple[str, ...]  # the first words of an info string that mean this kind
    runs: bool = False  # the document's worker executes it (Python, SQL)
    linted: bool = False  # ruff checks it
    expects: bool = False  # it may carry expect=
    check: Callable[[str], str | None] | None = None  # validates the text: a failure message, or None
    checked_as: str = ""  # what a passing check says
    shown: str = ""  # why a block of this kind is shown, not run

    def check_block(self, code: str) -> tuple[Outcome, str]:
        """(outcome, message) for a block that is checked or shown rather than run."""
        if self.check is None:
            return "skipped", self.shown
        failure = self.check(code)
        if failure:
            return "failed", failure
        if self.kind == "shell" and shutil.which("bash") is None:
            return "skipped", "bash is not installed, so the syntax was not checked"
        return "checked", self.checked_as


LANGUAGES: tuple[Language, ...] = (
    Language("python", ("python", "py", "python3"), runs=True, linted=True, expects=True),
    Language("sql", ("sql",), runs=True),
    Language("json", ("json",), check=_check_json, checked_as="parsed as json"),
    Language("toml", ("toml",), check=_check_toml, checked_as="parsed as toml"),
    Language("yaml", ("yaml", "yml"), check=_check_yaml, checked_as="parsed as yaml"),
    Language(
        "shell", ("bash", "sh", "shell"), check=_check_shell, checked_as="bash -n found no syntax error"
    ),
    Language("output", ("output",)),
    Language(
        "text", ("text", "console", "diff", "log", "plaintext", "markdown", "md"), shown="shown, not run"
    ),
)
_BY_ALIAS: dict[str, Language] = {alias: lang for lang in LANGUAGES for alias in lang.aliases}
_BY_KIND: dict[str, Language] = {lang.kind: lang for lang in LANGUAGES}


def language_of(word: str) -> Language | None:
    """The kind a fence's first word stands for; None for a language no engine handles."""
    return _BY_ALIAS.get(word.lower())


def language(kind: str) -> Language:
    """The ``Language`` of a kind decided at parse time."""
    return _BY_KIND[kind]


def known_words() -> list[str]:
    return sorted(_BY_ALIAS)


# -- expect kinds ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    message: str | None
    measured: dict[str, object]


def same_class(expected: str, actual: str) -> bool:
    """``asyncio.CancelledError`` names ``asyncio.exceptions.CancelledError``: a package re-exports a class."""
    if expected == actual:
        return True
    e_module, _, e_name = expected.rpartition(".")
    a_module, _, a_name = actual.rpartition(".")
    return e_name == a_name and bool(e_module) and (a_module + ".").startswith(e_module + ".")


def any_of(expected: str, names: list[str]) -> bool:
    return any(same_class(expected, name) for name in names)


def matches(pattern: str | None, text: str) -> bool:
    return pattern is None or re.search(pattern, text) is not None


def _judge_raises(target: str, match: str | None, record: Any) -> Verdict | None:
    if record.status != "raised":
        return Verdict("failed", f"expected raises:{target}, but the block ran without raising", {})
    if not any_of(target, record.exc_mro):
        return None  # an unexpected exception: the generic verdict names it
    text = f"{record.exc_type}: {record.exc_text}"
    if not matches(match, text):
        return Verdict(
            "failed",
            f"raised {record.exc_type} as expected, but its text does not match {match!r}: {record.exc_text}",
            {},
        )
    return Verdict("proved", f"raised {text}", {})


def _judge_warns(target: str, match: str | None, record: Any) -> Verdict | None:
    if record.status == "raised":
        return None
    hits = [w for w in record.warnings if any_of(target, w["category_mro"])]
    if not hits:
        seen = ", ".join(w["category"] for w in record.warnings) or "none"
        return Verdict("failed", f"expected warns:{target}, but the warnings were: {seen}", {})
    texts = [f"{w['category']}: {w['message']}" for w in hits]
    if not any(matches(match, t) for t in texts):
        return Verdict("failed", f"warned as expected, but no text matches {match!r}: {texts[0]}", {})
    return Verdict("proved", f"warned {texts[0]}", {"warned": texts[0]})


def _judge_queries(target: str, match: str | None, record: Any) -> Verdict | None:
    if record.status == "raised":
        return None
    counted = record.queries
    if counted != int(target):
        return Verdict("failed", f"expected {target} queries, counted {counted}", {})
    return Verdict("proved", f"ran {counted} {'query' if counted == 1 else 'queries'}", {})


@dataclass(frozen=True)
class ExpectKind:
    """One kind of ``expect="<kind>:<target>"``.

    ``judge`` decides a block that ran from its run record (None: leave it to the generic verdict, which names
    an unexpected exception); a kind with ``judge=None`` is judged from ruff's findings only.
    """

    name: str
    target: str  # the regular expression its target matches (the schema holds the same)
    describe: Callable[[str, Mapping[str, object]], str]  # for the docs site, with what was measured
    judge: Callable[[str, str | None, Any], Verdict | None] | None = None
    on_correct: bool = False  # a Correct block may carry it (a Correct block never fails)
    matchable: bool = False  # match="..." applies
    worker_flag: str | None = None  # what the worker must set up to observe it
    needs_module: str | None = None  # a module the engine needs to observe it (not an engine dependency)
    excuses_exception: bool = False  # the block is meant to raise
    excuses_warning: Callable[[str, dict[str, Any]], bool] | None = None  # a warning it declares


def _describe_queries(target: str, measured: Mapping[str, object]) -> str:
    got = measured.get("queries")
    return f"runs {got if got is not None else target} SQL statements (expected {target})"


EXPECT_KINDS: dict[str, ExpectKind] = {
    kind.name: kind
    for kind in (
        ExpectKind(
            "raises",
            r"[A-Za-z_][A-Za-z0-9_.]*",
            lambda t, m: f"raises {t}",
            _judge_raises,
            matchable=True,
            excuses_exception=True,
        ),
        ExpectKind(
            "warns",
            r"[A-Za-z_][A-Za-z0-9_.]*",
            lambda t, m: f"warns {t}",
            _judge_warns,
            matchable=True,
            excuses_warning=lambda t, w: any_of(t, w["category_mro"]),
        ),
        ExpectKind("lint", r"[A-Z]+[0-9]+", lambda t, m: f"ruff reports {t}"),
        ExpectKind(
            "queries",
            r"[0-9]+",
            _describe_queries,
            _judge_queries,
            on_correct=True,
            worker_flag="queries",
            needs_module="sqlalchemy",
        ),
    )
}


def expect_kind(name: str) -> ExpectKind:
    return EXPECT_KINDS[name]


def missing_module(expect_name: str) -> str | None:
    """Why an expect kind cannot be observed here: the module it needs is not importable (None: it is)."""
    needed = EXPECT_KINDS[expect_name].needs_module
    if needed is None or importlib.util.find_spec(needed) is not None:
        return None
    return (
        f'expect="{expect_name}:..." is observed through {needed}, which is not installed where fenceproof runs: '
        f"install it beside fenceproof (pip install {needed})"
    )


def expect_pattern() -> str:
    """The regular expression every ``expect`` value matches (tests check the schema says the same)."""
    return "^(" + "|".join(f"{k.name}:{k.target}" for k in EXPECT_KINDS.values()) + ")$"


def describe_expect(expect: str, measured: object = None) -> str:
    """``raises:X`` -> ``raises X``, with a measured figure where the report has one."""
    name, _, target = expect.partition(":")
    kind = EXPECT_KINDS.get(name)
    figures = measured if isinstance(measured, Mapping) else {}
    return kind.describe(target, figures) if kind else expect
