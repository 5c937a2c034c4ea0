"""The real clients accept the skill and the plugin: Claude Code's validator and installer, and skills-ref.

Claude Code runs with a scratch HOME, no login and no network (it needs neither for these commands), on a copy
of the repository's tracked and untracked-but-not-ignored files, as a fresh clone would have them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SKILL_DIR, require_tool

CLAUDE_VERSION = "2.1.332"
CLAUDE_HINT = f"npm install -g @anthropic-ai/claude-code@{CLAUDE_VERSION} (Node.js 20 or later)"
AGENTSKILLS_HINT = "uv sync (skills-ref is in the dev group), or: pip install skills-ref==0.1.1"
PLUGIN = "python-backend"
MARKETPLACE = json.loads((REPO_ROOT / ".claude-plugin" / "marketplace.json").read_text(encoding="utf-8"))[
    "name"
]


@pytest.fixture(scope="module")
def claude() -> str:
    return require_tool("claude", CLAUDE_HINT)


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a fresh clone has: tracked plus untracked-not-ignored (no .venv, no node_modules)."""
    git = require_tool("git", "apt-get install git")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    copy = tmp_path_factory.mktemp("clone") / "python-backend"
    for rel in filter(None, listed.split("\0")):
        source = REPO_ROOT / rel
        if source.is_file():  # a tracked file deleted in the worktree is not in a clone either
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / rel)
    return copy


def run_claude(
    claude: str, home: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``claude <args>`` with a scratch HOME: no login, no settings, nothing sent anywhere."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    return subprocess.run(
        [claude, *args], cwd=cwd or home, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _validate(claude: str, home: Path, target: Path) -> dict[str, object]:
    result = run_claude(claude, home, "plugin", "validate", "--strict", "--json", str(target))
    try:
        return {"returncode": result.returncode, **json.loads(result.stdout)}
    except json.JSONDecodeError:
        pytest.fail(
            f"claude plugin validate printed no JSON (rc {result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _problems(report: dict[str, object]) -> list[object]:
    parts = [report["manifest"], *report.get("contents", [])]  # type: ignore[list-item]
    return [p for part in parts for p in (*part["errors"], *part["warnings"])]  # type: ignore[index]


def test_claude_version_is_the_pinned_one(claude: str, tmp_path: Path) -> None:
    result = run_claude(claude, tmp_path / "home", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(CLAUDE_VERSION), result.stdout


@pytest.mark.parametrize("target", [".", ".claude-plugin/plugin.json"])
def test_claude_plugin_validate_strict_passes(
    claude: str, repo_copy: Path, tmp_path: Path, target: str
) -> None:
    report = _validate(claude, tmp_path / "home", repo_copy / target)
    assert report["returncode"] == 0 and report["success"] is True, json.dumps(report, indent=1)
    assert _problems(report) == []
    assert report["provides"]["skills"] == [f"{PLUGIN}:{PLUGIN}"]  # type: ignore[index]


def test_claude_plugin_validate_catches_a_broken_skill(claude: str, repo_copy: Path, tmp_path: Path) -> None:
    """The validator really reads our SKILL.md: the same check fails when its frontmatter breaks."""
    broken = tmp_path / "broken"
    shutil.copytree(repo_copy, broken)
    skill = broken / "skills" / "python-backend" / "SKILL.md"
    skill.write_text(skill.read_text(encoding="utf-8").replace("\nname: ", '\nname: "unterminated ', 1))
    report = _validate(claude, tmp_path / "home", broken)
    assert report["returncode"] == 1 and report["success"] is False
    assert "YAML frontmatter failed to parse" in json.dumps(report["contents"])


def _installed_skill(home: Path) -> list[Path]:
    cache = home / ".claude" / "plugins" / "cache" / MARKETPLACE / PLUGIN
    return sorted(cache.glob("*/skills/python-backend/SKILL.md"))


def _assert_installed(home: Path, repo_copy: Path) -> None:
    installed = _installed_skill(home)
    assert len(installed) == 1, f"no single installed SKILL.md under {home}/.claude/plugins/cache"
    version = json.loads((repo_copy / ".claude-plugin" / "plugin.json").read_text())["version"]
    assert installed[0].parents[2].name == version
    assert installed[0].read_text(encoding="utf-8") == (SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")
    root = installed[0].parents[2]
    for rule in (SKILL_DIR / "rules").glob("*.md"):
        assert (root / "skills" / "python-backend" / "rules" / rule.name).is_file(), rule.name
    assert (root / "skills" / "python-backend" / "scripts" / "find_rule.py").is_file()
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert settings["enabledPlugins"][f"{PLUGIN}@{MARKETPLACE}"] is True


def test_claude_marketplace_add_then_install(claude: str, repo_copy: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    added = run_claude(claude, home, "plugin", "marketplace", "add", str(repo_copy))
    assert added.returncode == 0, added.stdout + added.stderr
    assert f"Successfully added marketplace: {MARKETPLACE}" in added.stdout
    installed = run_claude(claude, home, "plugin", "install", f"{PLUGIN}@{MARKETPLACE}")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert f"Successfully installed plugin: {PLUGIN}@{MARKETPLACE}" in installed.stdout
    _assert_installed(home, repo_copy)


def test_claude_one_step_install_with_marketplace_option(
    claude: str, repo_copy: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    installed = run_claude(claude, home, "plugin", "install", PLUGIN, "--marketplace", str(repo_copy))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _assert_installed(home, repo_copy)


def test_agentskills_validate_passes() -> None:
    agentskills = require_tool("agentskills", AGENTSKILLS_HINT)
    result = subprocess.run(
        [agentskills, "validate", str(SKILL_DIR)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid skill" in result.stdout


def test_agentskills_validate_rejects_a_non_spec_key(tmp_path: Path) -> None:
    """The reference validator really reads our frontmatter: an extra key makes the same command fail."""
    agentskills = require_tool("agentskills", AGENTSKILLS_HINT)
    copy = tmp_path / "python-backend"
    shutil.copytree(SKILL_DIR, copy)
    skill = copy / "SKILL.md"
    skill.write_text(skill.read_text(encoding="utf-8").replace("\nname:", "\nwhen_to_use: x\nname:", 1))
    result = subprocess.run(
        [agentskills, "validate", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "when_to_use" in result.stdout + result.stderr
