"""``requires="python>=3.13"`` and ``requires="sqlalchemy>=2.1"``: whether the running versions meet a block's
condition. A block whose condition is not met is skipped, with the condition and the running version as reason.
"""

from __future__ import annotations

import platform
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement


def parse(spec: str) -> list[Requirement]:
    """The requirements of a ``requires`` value (several may be joined with ``;``). ValueError when malformed."""
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts:
        raise ValueError("requires is empty")
    out = []
    for part in parts:
        try:
            req = Requirement(part)
        except InvalidRequirement as error:
            raise ValueError(f"requires {part!r} is not a version condition: {error}") from None
        if req.marker is not None or req.extras or req.url:
            raise ValueError(f"requires {part!r}: write a name and versions only, e.g. python>=3.13")
        out.append(req)
    return out


def running_version(name: str) -> str | None:
    """The running Python's version for ``python``, else the installed version of that package (None: absent)."""
    if name.lower() == "python":
        return platform.python_version()
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def unmet(spec: str) -> str | None:
    """Why the condition is not met here (the skip reason), or None when it is."""
    for req in parse(spec):
        version = running_version(req.name)
        if version is None:
            return f"requires {req}; {req.name} is not installed"
        if not req.specifier.contains(version, prereleases=True):
            return f"requires {req}; running {req.name} {version}"
    return None
