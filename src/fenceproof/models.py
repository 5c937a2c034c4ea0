"""The data every stage passes on: blocks pulled from Markdown, and what became of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["passed", "proved", "linted", "skipped", "checked", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "proved", "linted", "skipped", "checked", "failed")
Role = Literal["correct", "incorrect"]
Mode = Literal["run", "lint", "skip", "file"]


class ConfigError(Exception):
    """Bad input: malformed frontmatter, an unknown fence attribute, an unclosed fence, ...

    Always names a file and a line; the CLI prints it as ``path:line: message`` and exits 2.
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


class ServerUnavailable(Exception):
    """No PostgreSQL server can be had; the message says how to get one."""


@dataclass(frozen=True)
class Expectation:
    """What a block must do: ``raises``, ``warns``, ``lint`` or ``queries``, and its target."""

    kind: str  # a name in fenceproof.kinds.EXPECT_KINDS
    target: str  # a qualified exception or warning name, a ruff code, or a count
    match: str | None = None  # a regular expression searched in the exception or warning text

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class Block:
    """One fenced code block, as written in its Markdown file."""

    path: Path  # absolute path of the Markdown file
    rel: str  # the same path relative to the repository root, with forward slashes
    line: int  # 1-based line of the opening fence
    lang: str  # the first word of the info string, lower-cased
    code: str  # the block's content, ending with a newline
    attrs: dict[str, str] = field(default_factory=dict)  # the quoted key="value" pairs after the language
    role: Role | None = None  # from the nearest "Incorrect"/"Correct" label above it, or role="..."
    kind: str = ""  # what the language means (fenceproof.kinds), decided here at parse time; "" when unknown

    def __post_init__(self) -> None:
        if not self.kind:
            from fenceproof.kinds import language_of

            found = language_of(self.lang)
            object.__setattr__(self, "kind", found.kind if found else "")

    @property
    def first_code_line(self) -> int:
        """The Markdown line of the block's first line of code."""
        return self.line + 1

    @property
    def mode(self) -> Mode:
        if "file" in self.attrs:
            return "file"
        return self.attrs.get("mode", "run")  # type: ignore[return-value]

    @property
    def reason(self) -> str | None:
        return self.attrs.get("reason")

    @property
    def expect(self) -> Expectation | None:
        raw = self.attrs.get("expect")
        if raw is None:
            return None
        kind, _, target = raw.partition(":")
        return Expectation(kind, target, self.attrs.get("match"))  # type: ignore[arg-type]

    @property
    def requires(self) -> str | None:
        return self.attrs.get("requires")

    @property
    def timeout(self) -> float | None:
        raw = self.attrs.get("timeout")
        return float(raw) if raw is not None else None

    @property
    def where(self) -> str:
        return f"{self.rel}:{self.line}"


@dataclass
class Document:
    """One Markdown file of the corpus with its frontmatter and blocks."""

    path: Path
    rel: str
    kind: str  # "skill", "rule", "sections", "template", "reference", "checklist", "example", "other"
    frontmatter: dict[str, object]
    blocks: list[Block]


@dataclass
class RunRecord:
    """Raw facts about one run of a block (the worker sends them as a dict); prove decides what they mean."""

    line: int  # the block's opening-fence line
    status: str  # "ok" | "raised" | "timeout" | "not-run" | "error" (the engine failed to run it)
    exc_type: str | None = None  # "sqlalchemy.exc.MissingGreenlet"; builtins bare ("TypeError")
    exc_mro: list[str] = field(default_factory=list)  # qualified names of type(exc).__mro__, without object
    exc_text: str | None = None  # str(exc), or what went wrong for timeout / not-run / error
    where: str | None = None  # "rules/x.md:57": the deepest traceback frame inside the document
    warnings: list[dict[str, Any]] = field(default_factory=list)  # category, category_mro, message, where
    queries: int | None = None  # SQL statements run through SQLAlchemy (None when not counted)
    stdout: str = ""  # what the block printed, clipped to about 4 KB
    started: float = 0.0  # time.time() bounds
    finished: float = 0.0
    duration_s: float = 0.0
    traceback: str | None = None  # the formatted traceback when the block raised (tail, about 6 KB)


@dataclass
class PasteResult:
    """What became of a Correct or unlabelled block when its document's Correct chain ran on its own."""

    outcome: Outcome
    message: str | None = None
    duration_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"outcome": self.outcome, "message": self.message, "duration_s": round(self.duration_s, 4)}


@dataclass
class BlockResult:
    """What became of one block: the row of the JSON report."""

    block: Block
    outcome: Outcome
    message: str | None = None  # why it failed, or what it proved ("raised sqlalchemy.exc.MissingGreenlet")
    duration_s: float = 0.0
    measured: dict[str, object] = field(default_factory=dict)  # e.g. {"queries": 11}
    stdout: str = ""  # what the block printed (clipped by the worker)
    paste: PasteResult | None = None  # the block's outcome in the Correct chain run on its own
    cached: bool = False  # taken from the cache of an earlier run with the same inputs

    def to_json(self) -> dict[str, object]:
        b = self.block
        return {
            "path": b.rel,
            "line": b.line,
            "lang": b.lang,
            "kind": b.kind,
            "mode": b.mode,
            "role": b.role,
            "expect": str(b.expect) if b.expect else None,
            "outcome": self.outcome,
            "reason": b.reason,
            "duration_s": round(self.duration_s, 4),
            "message": self.message,
            "measured": self.measured,
            "stdout": self.stdout,
            "requires": b.requires,
            "paste": self.paste.to_json() if self.paste else None,
            "cached": self.cached,
        }
