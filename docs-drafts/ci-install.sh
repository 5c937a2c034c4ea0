#!/usr/bin/env bash
# The clients tests/test_clients.py runs, installed on a fresh Debian (bookworm) machine as root.
# Run it from the repository root.
# skills-ref (`agentskills`) needs nothing here: it is in the dev dependency group, so `uv run` installs it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# git: the client tests copy the repository's tracked and untracked-not-ignored files (git ls-files).
# Node.js 20 or later + npm: Claude Code's npm package (a native binary; it warns "EBADENGINE >=22" on Node 20
# and works). Debian bookworm ships Node 18, so take Node 20 from Debian's nodejs only when it is new enough.
need_node=1
if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then need_node=0; fi
apt_packages=()
command -v git >/dev/null || apt_packages+=(git)
command -v curl >/dev/null || apt_packages+=(curl ca-certificates)
if [ ${#apt_packages[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
# A checkout owned by another user (actions/checkout in a container) makes git refuse `git ls-files`.
git config --global --add safe.directory "$(pwd)"
if [ "$need_node" = 1 ]; then
  # NodeSource's Node 22 repository (the same packaging this project's development machine uses).
  curl -fsSL https://deb.nodesource.com/setup_22.x | bash - >/dev/null
  apt-get install -y -qq --no-install-recommends nodejs >/dev/null
fi

# Claude Code CLI, pinned: tests/test_clients.py checks `claude --version` is this one.
if ! claude --version 2>/dev/null | grep -q '^2\.1\.332 '; then
  npm install -g --no-fund --no-audit @anthropic-ai/claude-code@2.1.332
fi
claude --version
