"""Results of documents whose inputs did not change, kept under ``build/fenceproof/cache/``.

A document's key hashes everything its outcome depends on: its own text, the files its blocks name (an asset
it imports, a file it reads), the lock file (the library versions), the engine's own source, the Python version
and the PostgreSQL server's version. Only documents whose every block held are stored. An entry that does not
parse, was written by another engine, or does not describe the document block for block is ignored, never
trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tempfile
from functools import cache
from pathlib import Path

from fenceproof.models import BlockResult, Document, PasteResult

CACHE_DIR = Path("build/fenceproof/cache")
FORMAT = 1
_NAMED_FILE = re.compile(r"[\w./-]+\.(?:py|md|json|toml|ini|txt|sql|yaml|yml|cfg|mako)\b")


@cache
def engine_digest() -> str:
    """A hash of the engine's own files: a changed engine trusts no earlier result."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".json"):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def named_files(document: Document, skill_dir: Path) -> list[Path]:
    """Files of the skill that the document's blocks name, e.g. ``assets/fastapi-app-template.py``."""
    found: set[Path] = set()
    for block in document.blocks:
        for name in _NAMED_FILE.findall(block.code):
            for base in (document.path.parent, skill_dir):
                candidate = (base / name).resolve()
                if candidate.is_file() and candidate != document.path.resolve():
                    found.add(candidate)
    return sorted(found)


def document_key(document: Document, root: Path, skill_dir: Path, postgres: str) -> str:
    digest = hashlib.sha256()
    parts = [
        f"format {FORMAT}",
        f"engine {engine_digest()}",
        f"python {platform.python_implementation()} {platform.python_version()}",
        f"postgres {postgres}",
        f"document {document.rel}",
    ]
    for part in parts:
        digest.update(part.encode() + b"\0")
    digest.update(document.path.read_bytes())
    lock = root / "uv.lock"
    if lock.is_file():
        digest.update(lock.read_bytes())
    for path in named_files(document, skill_dir):
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class Cache:
    """Stored results by document key. ``read=False`` trusts no stored result (every document runs);
    ``write=False`` stores none."""

    def __init__(self, root: Path, read: bool = True, write: bool = True) -> None:
        self.dir = root / CACHE_DIR
        self.read = read
        self.write = write

    def load(self, key: str, document: Document) -> list[BlockResult] | None:
        if not self.read:
            return None
        try:
            data = json.loads((self.dir / f"{key}.json").read_text("utf-8"))
            return _results(data, key, document)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing, corrupt or foreign: run the document

    def forget(self, key: str) -> None:
        """Remove the entry of ``key``, if any (its result is no longer known to be right)."""
        (self.dir / f"{key}.json").unlink(missing_ok=True)

    def store(self, key: str, document: Document, results: list[BlockResult]) -> None:
        if not self.write or any(r.outcome == "failed" for r in results):
            return
        data = {
            "format": FORMAT,
            "key": key,
            "engine": engine_digest(),
            "document": document.rel,
            "rows": [r.to_json() for r in results],
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(tmp, self.dir / f"{key}.json")  # whole or not at all, also with two runs at once


def _results(data: dict, key: str, document: Document) -> list[BlockResult] | None:
    if data.get("format") != FORMAT or data.get("key") != key or data.get("engine") != engine_digest():
        return None
    rows = data["rows"]
    if data.get("document") != document.rel or len(rows) != len(document.blocks):
        return None
    results = []
    for block, row in zip(document.blocks, rows, strict=True):
        if (row["path"], row["line"], row["lang"]) != (block.rel, block.line, block.lang):
            return None
        if row["outcome"] not in ("passed", "proved", "linted", "skipped", "checked"):
            return None
        paste = row.get("paste")
        results.append(
            BlockResult(
                block,
                row["outcome"],
                row["message"],
                float(row["duration_s"]),
                dict(row["measured"]),
                str(row["stdout"]),
                PasteResult(paste["outcome"], paste["message"], float(paste["duration_s"]))
                if paste
                else None,
                cached=True,
            )
        )
    return results
