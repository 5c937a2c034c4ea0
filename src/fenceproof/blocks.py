"""Every fenced code block of a Markdown text, with its line, language, attributes and role."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from fenceproof import conditions, kinds
from fenceproof.models import Block, ConfigError, Role
from fenceproof.schemas import check

_ATTR = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_-]*)=(?:"([^"]*)"|'([^']*)')""")
_LABEL = re.compile(r"^[*_\s]*(incorrect|correct)\b", re.IGNORECASE)
_QUOTE = re.compile(r"^(\s*>)+")
_PARSER = MarkdownIt("commonmark")


def parse_info(info: str, rel: str, line: int) -> tuple[str, dict[str, str]]:
    """Split a fence's info string into its language and its quoted key="value" attributes."""
    info = info.strip()
    if not info:
        raise ConfigError(rel, line, "fence has no language: write ```python, or ```text for output")
    lang, _, rest = info.partition(" ")
    attrs: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _ATTR.match(rest, pos)
        if not m:
            raise ConfigError(rel, line, f'cannot read fence attributes {rest[pos:]!r}: write key="value"')
        key = m.group(1)
        if key in attrs:
            raise ConfigError(rel, line, f"fence attribute {key!r} given twice")
        attrs[key] = m.group(2) if m.group(2) is not None else m.group(3)
        pos = m.end()
    check("fence", attrs, rel, line, "fence attribute")
    return lang.lower(), attrs


def frontmatter_lines(lines: list[str]) -> int:
    """How many lines the YAML frontmatter takes, both ``---`` lines included (0 when there is none)."""
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return i + 1
    return 0


def blank_frontmatter(text: str) -> str:
    """The text with its YAML frontmatter lines blanked, so Markdown line numbers stay true."""
    lines = text.split("\n")
    end = frontmatter_lines(lines)
    return "\n" * end + "\n".join(lines[end:]) if end else text


def _closes(fence: Token, lines: list[str]) -> bool:
    """Whether the fence's last line is its closing fence (markdown-it closes an unclosed one at the end)."""
    if fence.map is None or fence.map[1] - fence.map[0] < 2 or fence.map[1] > len(lines):
        return False
    last = _QUOTE.sub("", lines[fence.map[1] - 1]).strip()  # a fence inside a blockquote keeps its "> "
    return last.startswith(fence.markup) and set(last) == {fence.markup[0]}


def extract(text: str, path: Path, rel: str) -> list[Block]:
    """All fenced blocks of ``text``, in order. Raises ConfigError for bad attributes or an unclosed fence."""
    body = blank_frontmatter(text)
    lines = body.split("\n")
    blocks: list[Block] = []
    role: Role | None = None
    tokens = _PARSER.parse(body)
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            role = None
        elif token.type == "paragraph_open" and i + 1 < len(tokens):
            label = _LABEL.match(tokens[i + 1].content)
            if label:
                role = label.group(1).lower()  # type: ignore[assignment]
        elif token.type == "fence":
            assert token.map is not None
            line = token.map[0] + 1
            if not _closes(token, lines):
                raise ConfigError(
                    rel, line, f"unclosed fence: no closing {token.markup} before the end of the file"
                )
            lang, attrs = parse_info(token.info, rel, line)
            block_role = attrs.get("role", role)
            block = Block(path, rel, line, lang, token.content, attrs, block_role)  # type: ignore[arg-type]
            _check_block(block, blocks)
            blocks.append(block)
    _no_hidden_fences(tokens, lines, rel)
    return blocks


# A line that opens a fence by its look: backticks whose info string has no backtick, or tildes.
_FENCE_LOOK = re.compile(r"^[ \t>]*(?:(?:[-*+]|\d+[.)])[ \t]+)?(?:`{3,}[^`]*|~{3,}.*)$")


def _no_hidden_fences(tokens: list[Token], lines: list[str], rel: str) -> None:
    """A fence the Markdown parser does not read as a code block (inside an HTML block, indented as code)
    would be neither run nor reported: name it instead."""
    covered: set[int] = set()
    for token in tokens:
        if token.type == "fence" and token.map is not None:
            covered.update(range(token.map[0], token.map[1]))
    for number, line in enumerate(lines):
        if number not in covered and _FENCE_LOOK.match(line):
            raise ConfigError(
                rel,
                number + 1,
                "this fence is not read as a code block (inside an HTML block, or indented as code?), so it "
                "would be neither run nor reported: put a blank line around it and indent it at most 3 spaces",
            )


def _check_block(block: Block, before: list[Block]) -> None:
    """What the attributes and the language allow together; the kind was decided when the block was made."""
    where = (block.rel, block.line)
    mode = block.mode
    lang = kinds.language(block.kind) if block.kind else None
    if lang is None and mode not in ("skip", "file"):
        raise ConfigError(
            *where,
            f"no engine runs ```{block.lang} (known: {', '.join(kinds.known_words())}): "
            'add mode="skip" reason="..."',
        )
    expect = block.expect
    if expect and not (lang and lang.expects):
        raise ConfigError(*where, f"expect= applies to python blocks, not ```{block.lang}")
    if expect and mode == "lint" and kinds.expect_kind(expect.kind).judge is not None:
        raise ConfigError(*where, f"a lint-only block cannot prove {expect}: it never runs")
    if block.requires is not None:
        try:
            conditions.parse(block.requires)
        except ValueError as error:
            raise ConfigError(*where, str(error)) from None
    if block.kind == "output" and mode != "skip":
        if block.attrs.keys() - {"requires"}:
            raise ConfigError(*where, "an output block takes no attributes but requires=")
        if not any(b.kind == "python" for b in before):
            raise ConfigError(
                *where, "an output block shows what the Python block before it printed: none is"
            )
    if block.role == "incorrect" and lang and lang.expects and mode in ("run", "lint") and not expect:
        raise ConfigError(
            *where,
            'an Incorrect block must say how it fails: expect="raises:...", "warns:...", '
            '"lint:..." or "queries:N" (or mode="skip" reason="...")',
        )


def shown_block(blocks: list[Block], output: Block) -> Block | None:
    """The Python block whose printed text an output block shows: the nearest one before it."""
    earlier = [b for b in blocks if b.kind == "python" and b.line < output.line]
    return earlier[-1] if earlier else None
