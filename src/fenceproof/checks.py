"""Blocks in other languages than Python: parsed or syntax-checked where something can check them."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib

import yaml

from fenceproof.blocks import PARSED, SHELL, TEXT
from fenceproof.models import Block, BlockResult


def check_block(block: Block) -> BlockResult:
    """The result for a json/toml/yaml/shell/text block (SQL and Python run in the document's worker)."""
    if block.mode == "skip":
        return BlockResult(block, "skipped", block.reason)
    if block.lang in TEXT:
        return BlockResult(block, "skipped", f"```{block.lang} is shown, not run")
    if block.lang in PARSED:
        try:
            if block.lang == "json":
                json.loads(block.code)
            elif block.lang == "toml":
                tomllib.loads(block.code)
            else:
                yaml.safe_load(block.code)
        except (ValueError, yaml.YAMLError) as error:
            return BlockResult(block, "failed", f"not valid {block.lang}: {error}")
        return BlockResult(block, "checked", f"parsed as {block.lang}")
    if block.lang in SHELL:
        bash = shutil.which("bash")
        if bash is None:
            return BlockResult(block, "skipped", "bash is not installed, so the syntax was not checked")
        done = subprocess.run([bash, "-n"], input=block.code, capture_output=True, text=True, check=False)
        if done.returncode:
            return BlockResult(block, "failed", f"bash -n: {done.stderr.strip()}")
        return BlockResult(block, "checked", "bash -n found no syntax error")
    raise ValueError(f"{block.where}: no check for ```{block.lang}")
