"""Shared test helpers: where the repository is, and how a test gets an external tool."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SKILL_DIR = REPO_ROOT / "skills" / "python-backend"


def require_tool(name: str, install_hint: str) -> str:
    """The path of the executable ``name``, from PATH or this interpreter's environment.

    Missing: the test fails when the ``CI`` environment variable is set (CI installs every tool), and is
    skipped otherwise, saying how to install the tool locally (``install_hint``).
    """
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{name} is not installed; install it with: {install_hint}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so a missing tool is a failure)", pytrace=False)
    pytest.skip(message)
