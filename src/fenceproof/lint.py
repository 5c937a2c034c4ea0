"""Ruff over every Python block: one virtual module per document, findings mapped back to Markdown lines."""

from __future__ import annotations

import json
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fenceproof import kinds
from fenceproof.models import Block, Document

# The families the corpus is held to: pyflakes, syntax, bugbear, async blocking calls, bandit, pyupgrade,
# and a dropped asyncio.create_task() result (RUF006).
SELECT = ["E4", "E7", "E9", "F", "B", "ASYNC", "S", "UP", "RUF006"]
# Blocks share one namespace in Markdown order, so some module-level findings are not findings here:
# top-level await (F704), imports after code (E402), a Correct block redefining the Incorrect one's name (F811).
TARGET = "py311"
IGNORE = ["F704", "E402", "F811", "S101"]
# Findings that mean the code itself is broken, even in an Incorrect example.
BROKEN = ("F", "E9")


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    line: int  # Markdown line

    def __str__(self) -> str:
        return f"{self.code} {self.message} (line {self.line})"


def lintable(block: Block) -> bool:
    return bool(block.kind) and kinds.language(block.kind).linted and block.mode != "skip"


def virtual_module(blocks: list[Block]) -> str:
    """Source in which each block's lines sit at their Markdown line numbers, blanks elsewhere."""
    lines: list[str] = []
    for block in blocks:
        code_lines = block.code.rstrip("\n").split("\n")
        lines.extend([""] * (block.first_code_line - 1 - len(lines)))
        lines.extend(code_lines)
    return "\n".join(lines) + "\n"


def ruff_executable() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "ruff"
    return str(candidate) if candidate.exists() else "ruff"


def lint_documents(documents: list[Document]) -> dict[tuple[str, int], list[Finding]]:
    """Findings per block, keyed by (path, line of the opening fence). One ruff run for everything."""
    units: list[tuple[str, list[Block]]] = []
    for document in documents:
        shared = [b for b in document.blocks if lintable(b) and b.mode != "file"]
        if shared:
            units.append((document.rel, shared))
        units.extend(
            (f"{document.rel}:{b.line}", [b]) for b in document.blocks if b.mode == "file" and lintable(b)
        )
    findings: dict[tuple[str, int], list[Finding]] = {
        (b.rel, b.line): [] for _, blocks in units for b in blocks
    }
    if not units:
        return findings
    with tempfile.TemporaryDirectory(prefix="fenceproof-lint-") as tmp:
        owners: dict[str, list[Block]] = {}
        for number, (_, blocks) in enumerate(units):
            name = str(Path(tmp) / f"doc{number:04d}.py")
            Path(name).write_text(virtual_module(blocks), "utf-8")
            owners[name] = blocks
        command = [
            ruff_executable(),
            "check",
            "--isolated",
            "--no-cache",
            "--output-format",
            "json",
            "--target-version",
            TARGET,  # the oldest Python the corpus supports: the same findings on every interpreter
            "--select",
            ",".join(SELECT),
            "--ignore",
            ",".join(IGNORE),
            tmp,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"ruff failed (exit {done.returncode}): {done.stderr.strip()}")
        for item in json.loads(done.stdout or "[]"):
            row = item["location"]["row"]
            for block in owners[item["filename"]]:
                if block.first_code_line <= row < block.first_code_line + block.code.count("\n"):
                    code = item["code"] or "syntax"
                    findings[(block.rel, block.line)].append(Finding(code, item["message"], row))
                    break
    return findings


def is_broken(finding: Finding) -> bool:
    return finding.code == "syntax" or finding.code.startswith(BROKEN)
