from pathlib import Path

from skill_factory import make_skill

from fenceproof.corpus import load_corpus
from fenceproof.lint import lint_documents
from fenceproof.models import Block
from fenceproof.prove import lint_verdict

RULE = """# Rule

**Incorrect** (blocks the loop):

```python expect="lint:ASYNC251"
import asyncio
import time


async def handler() -> None:
    time.sleep(0.01)
```

**Correct**:

```python
async def handler() -> None:
    await asyncio.sleep(0.01)


await handler()
```

```python file="app/db.py"
import os

url = os.environ["DATABASE_URL"]
```

```python mode="lint" reason="a fragment"
query = "SELECT * FROM users WHERE name = '%s'" % name
```
"""


def _findings(tmp_path: Path) -> dict[int, list[str]]:
    make_skill(tmp_path, {"asyncio-a.md": RULE})
    corpus = load_corpus(tmp_path)
    found = lint_documents(corpus.documents)
    return {line: sorted(f"{f.code}@{f.line}" for f in items) for (_, line), items in found.items()}


def test_findings_land_on_their_blocks_at_markdown_lines(tmp_path: Path) -> None:
    # Blocks share a namespace: the Correct block uses `asyncio` imported by the Incorrect one; top-level await
    # and the redefinition of `handler` are not findings. The lint-only fragment uses an undefined name.
    assert _findings(tmp_path) == {
        14: ["ASYNC251@20"],
        25: [],
        33: [],
        39: ["F821@40", "S608@40", "UP031@40"],
    }


def _block(role: str | None, attrs: dict[str, str]) -> Block:
    return Block(Path("/d.md"), "d.md", 1, "python", "x = 1\n", attrs, role)  # type: ignore[arg-type]


def test_lint_verdicts(tmp_path: Path) -> None:
    from fenceproof.lint import Finding

    async251 = Finding("ASYNC251", "Async functions should not call `time.sleep`", 5)
    undefined = Finding("F821", "Undefined name `x`", 6)
    assert lint_verdict(_block("incorrect", {"expect": "lint:ASYNC251"}), [async251]) == (
        None,
        "ruff reported ASYNC251 Async functions should not call `time.sleep` (line 5)",
    )
    failure, _ = lint_verdict(_block("incorrect", {"expect": "lint:ASYNC210"}), [async251])
    assert failure == "expected ruff to report ASYNC210, but it reported ASYNC251"
    failure, _ = lint_verdict(_block("incorrect", {"expect": "raises:TypeError"}), [async251, undefined])
    assert failure == "ruff: F821 Undefined name `x` (line 6)"
    failure, _ = lint_verdict(_block("correct", {}), [async251])
    assert failure is not None and failure.startswith("ruff: ASYNC251")


def test_file_blocks_in_other_languages_are_not_linted_as_python(tmp_path: Path) -> None:
    body = '# Config\n\n```ini file="alembic.ini"\n[alembic]\nscript_location = migrations\n```\n'
    make_skill(tmp_path, {"asyncio-a.md": body})
    assert lint_documents(load_corpus(tmp_path).documents) == {}
