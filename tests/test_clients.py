"""The real clients accept the skill and the plugins: Claude Code's validator and installer, Codex's installer, skills-ref.

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
import yaml
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


# Codex: the CLI installs the plugin from a local marketplace offline and shows what the model would see.
CODEX_VERSION = "0.171.0"
CODEX_HINT = f"npm install -g @openai/codex@{CODEX_VERSION}"
CODEX_MARKETPLACE = json.loads(
    (REPO_ROOT / ".agents" / "plugins" / "marketplace.json").read_text(encoding="utf-8")
)["name"]


@pytest.fixture(scope="module")
def codex() -> str:
    return require_tool("codex", CODEX_HINT)


def run_codex(
    codex: str, home: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``codex <args>`` with a scratch HOME and CODEX_HOME: no login, no config, no other skills."""
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env.update(HOME=str(home), CODEX_HOME=str(home / ".codex"), XDG_CONFIG_HOME=str(home / ".config"))
    return subprocess.run(
        [codex, *args], cwd=cwd or home, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _codex_install(codex: str, home: Path, repo: Path) -> dict[str, object]:
    added = run_codex(codex, home, "plugin", "marketplace", "add", str(repo), "--json")
    assert added.returncode == 0, added.stdout + added.stderr
    assert json.loads(added.stdout)["marketplaceName"] == CODEX_MARKETPLACE
    installed = run_codex(codex, home, "plugin", "add", f"{PLUGIN}@{CODEX_MARKETPLACE}", "--json")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return json.loads(installed.stdout)


def test_codex_version_is_the_pinned_one(codex: str, tmp_path: Path) -> None:
    result = run_codex(codex, tmp_path / "home", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"codex-cli {CODEX_VERSION}", result.stdout


def test_codex_marketplace_add_then_install(codex: str, repo_copy: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    report = _codex_install(codex, home, repo_copy)
    version = json.loads((repo_copy / ".codex-plugin" / "plugin.json").read_text())["version"]
    assert (report["pluginId"], report["version"]) == (f"{PLUGIN}@{CODEX_MARKETPLACE}", version)
    root = Path(str(report["installedPath"]))
    assert root == home / ".codex" / "plugins" / "cache" / CODEX_MARKETPLACE / PLUGIN / version
    skill = root / "skills" / "python-backend"
    assert (skill / "SKILL.md").read_text(encoding="utf-8") == (SKILL_DIR / "SKILL.md").read_text(
        encoding="utf-8"
    )
    for rule in (SKILL_DIR / "rules").glob("*.md"):
        assert (skill / "rules" / rule.name).is_file(), rule.name
    assert (skill / "scripts" / "find_rule.py").is_file()
    config = (home / ".codex" / "config.toml").read_text(encoding="utf-8")
    assert f'[plugins."{PLUGIN}@{CODEX_MARKETPLACE}"]\nenabled = true' in config


def test_codex_shows_the_skill_to_the_model(codex: str, repo_copy: Path, tmp_path: Path) -> None:
    """`codex debug prompt-input` renders the model's context: the skill is listed with its description."""
    home = tmp_path / "home"
    root = Path(str(_codex_install(codex, home, repo_copy)["installedPath"]))
    work = tmp_path / "project"
    work.mkdir()
    shown = run_codex(codex, home, "debug", "prompt-input", "hello", cwd=work)
    assert shown.returncode == 0, shown.stderr
    context = json.dumps(json.loads(shown.stdout))
    description = str(yaml.safe_load((SKILL_DIR / "SKILL.md").read_text().split("---\n")[1])["description"])
    assert f"{PLUGIN}:{PLUGIN}: {description[:80]}" in context
    # The path is printed under a short root alias (r1/...): the installed copy's version folder and below.
    assert f"{root.parent.name}/{root.name}/skills/python-backend/SKILL.md)" in context


def test_codex_rejects_a_broken_plugin_manifest(codex: str, repo_copy: Path, tmp_path: Path) -> None:
    """Codex really reads our .codex-plugin/plugin.json: the same install fails when its name is invalid."""
    broken = tmp_path / "broken"
    shutil.copytree(repo_copy, broken)
    manifest = broken / ".codex-plugin" / "plugin.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["name"] = "Python Backend"
    manifest.write_text(json.dumps(data), encoding="utf-8")
    home = tmp_path / "home"
    assert run_codex(codex, home, "plugin", "marketplace", "add", str(broken), "--json").returncode == 0
    installed = run_codex(codex, home, "plugin", "add", f"{PLUGIN}@{CODEX_MARKETPLACE}", "--json")
    assert installed.returncode != 0
    assert "invalid plugin name" in installed.stdout + installed.stderr
