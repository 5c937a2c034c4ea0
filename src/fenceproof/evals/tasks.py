"""The tasks of evals/tasks: where they are and what task.toml says."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class BadInput(Exception):
    """A task or a solution folder that cannot be graded (the CLI exits 2)."""


PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # src/fenceproof/evals -> the repository


def evals_dir(start: Path | None = None) -> Path:
    """The evals/ folder: under the current directory's repository, else beside this package."""
    for base in ([start] if start else []) + [Path.cwd(), *Path.cwd().parents, PACKAGE_ROOT]:
        candidate = base / "evals"
        if (candidate / "graderlib").is_dir() and (candidate / "tasks").is_dir():
            return candidate
    raise BadInput("no evals/ folder with graderlib/ and tasks/ found")


@dataclass(frozen=True)
class Task:
    name: str
    dir: Path
    rules: tuple[str, ...] = ()
    timeout_s: float = 60.0
    files: tuple[str, ...] = ()  # files a solution must contain (missing: bad input)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def prompt_file(self) -> Path:
        return self.dir / "task.md"

    @property
    def grader(self) -> Path:
        return self.dir / "grader"

    def solutions(self) -> list[tuple[str, Path, bool]]:
        """(label, folder, should_pass) for the reference, each alternative and each buggy solution."""
        found: list[tuple[str, Path, bool]] = []
        if (self.dir / "reference").is_dir():
            found.append(("reference", self.dir / "reference", True))
        for kind, good in (("alternatives", True), ("buggy", False)):
            base = self.dir / kind
            if base.is_dir():
                found += [(f"{kind}/{d.name}", d, good) for d in sorted(base.iterdir()) if d.is_dir()]
        return found


def load_task(spec: str | Path, root: Path | None = None) -> Task:
    """A task by name (evals/tasks/<name>) or by the path of its folder."""
    path = Path(spec)
    if not (path / "task.toml").is_file():
        path = evals_dir(root) / "tasks" / str(spec)
    toml = path / "task.toml"
    if not toml.is_file():
        raise BadInput(f"{spec}: no such task (a folder with task.toml, or a name in evals/tasks)")
    try:
        meta = tomllib.loads(toml.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{toml}: task.toml is not valid TOML: {error}") from None
    if not (path / "grader").is_dir() or not (path / "task.md").is_file():
        raise BadInput(f"{path}: a task needs task.md and grader/")
    known = {"rules", "timeout_s", "files"}
    return Task(
        name=path.resolve().name,
        dir=path.resolve(),
        rules=tuple(meta.get("rules", ())),
        timeout_s=float(meta.get("timeout_s", 60)),
        files=tuple(meta.get("files", ())),
        extra={k: v for k, v in meta.items() if k not in known},
    )


def all_tasks(root: Path | None = None) -> list[Task]:
    base = evals_dir(root) / "tasks"
    return [load_task(d) for d in sorted(base.iterdir()) if (d / "task.toml").is_file()]
