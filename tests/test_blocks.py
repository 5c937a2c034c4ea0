from pathlib import Path

import pytest

from fenceproof.blocks import extract, parse_info
from fenceproof.models import ConfigError

DOC = """---
title: x
---
# Title

**Incorrect** (swallows the error):

```python expect="raises:TypeError" match="NoneType"
x = None + 1
```

Some words in between.

~~~python expect="raises:NameError"
print(still_incorrect)
~~~

**Correct** — re-raise:

```python
print("ok")
```

## Why

```text
output
```

- a list item

  ```json
  {"a": 1}
  ```
"""


def blocks():
    return extract(DOC, Path("/x/doc.md"), "doc.md")


def test_every_block_with_line_language_and_attributes() -> None:
    found = [(b.line, b.lang, b.attrs) for b in blocks()]
    assert found == [
        (8, "python", {"expect": "raises:TypeError", "match": "NoneType"}),
        (14, "python", {"expect": "raises:NameError"}),
        (20, "python", {}),
        (26, "text", {}),
        (32, "json", {}),
    ]


def test_labels_give_roles_until_the_next_heading() -> None:
    assert [b.role for b in blocks()] == ["incorrect", "incorrect", "correct", None, None]


def test_code_and_expectation() -> None:
    first = blocks()[0]
    assert first.code == "x = None + 1\n"
    assert first.expect is not None and (first.expect.kind, first.expect.target) == ("raises", "TypeError")
    assert first.expect.match == "NoneType"
    assert blocks()[4].code == '{"a": 1}\n'


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ('python bogus="1"', "unknown key 'bogus'"),
        ('python expect="raises:"', "is not valid"),
        ('python mode="skip"', "'reason' is required"),
        ("python expect=raises:X", 'write key="value"'),
        ('python mode="run" mode="lint"', "given twice"),
        ('python match="x"', "'expect' is required"),
        ("", "no language"),
    ],
)
def test_bad_attributes_name_file_and_line(info: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_info(info, "rules/a.md", 12)
    assert str(caught.value).startswith("rules/a.md:12: ")
    assert message in str(caught.value)


def test_unclosed_fence_is_reported_at_its_opening_line() -> None:
    text = "# T\n\n```python\nprint(1)\n\nmore text\n"
    with pytest.raises(ConfigError, match=r"^d.md:3: unclosed fence"):
        extract(text, Path("/d.md"), "d.md")


def test_incorrect_block_must_declare_how_it_fails() -> None:
    text = "# T\n\n**Incorrect**:\n\n```python\nprint(1)\n```\n"
    with pytest.raises(ConfigError, match=r"^d.md:5: an Incorrect block must say how it fails"):
        extract(text, Path("/d.md"), "d.md")


def test_unknown_language_needs_a_skip_reason() -> None:
    with pytest.raises(ConfigError, match=r"d.md:1: no engine runs ```rust"):
        extract("```rust\nfn main() {}\n```\n", Path("/d.md"), "d.md")
    skipped = extract('```rust mode="skip" reason="not Python"\nfn main() {}\n```\n', Path("/d.md"), "d.md")
    assert skipped[0].mode == "skip"


def test_lint_only_block_cannot_expect_a_raise() -> None:
    text = '```python mode="lint" reason="fragment" expect="raises:TypeError"\nx\n```\n'
    with pytest.raises(ConfigError, match="never runs"):
        extract(text, Path("/d.md"), "d.md")


def test_nested_fence_inside_a_longer_fence_is_one_block() -> None:
    text = "````markdown\n```python\nprint(1)\n```\n````\n"
    found = extract(text, Path("/d.md"), "d.md")
    assert [(b.lang, b.line) for b in found] == [("markdown", 1)]


def test_frontmatter_lines_keep_their_numbers() -> None:
    text = "---\ntitle: a\n---\n```python\nx = 1\n```\n"
    assert extract(text, Path("/d.md"), "d.md")[0].line == 4


def test_fence_inside_a_blockquote() -> None:
    text = "> Output:\n>\n> ```text\n> done\n> ```\n"
    found = extract(text, Path("/d.md"), "d.md")
    assert [(b.lang, b.line, b.code) for b in found] == [("text", 3, "done\n")]
    with pytest.raises(ConfigError, match="unclosed fence"):
        extract("> ```text\n> done\n", Path("/d.md"), "d.md")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("<details>\n<summary>more</summary>\n```python\nprint(1)\n```\n</details>\n", 3),  # in an HTML block
        ("Text.\n\n    ```python\n    print(1)\n    ```\n", 3),  # indented as code
    ],
)
def test_a_fence_the_parser_does_not_read_is_named_not_lost(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as error:
        extract(text, Path("x.md"), "x.md")
    assert (error.value.line, "is not read as a code block" in error.value.message) == (line, True)


def test_inline_code_that_starts_a_line_is_not_a_fence() -> None:
    text = "- ```` ```output ```` holds what was printed\n\n```python\nprint(1)\n```\n"
    assert [b.line for b in extract(text, Path("x.md"), "x.md")] == [3]
