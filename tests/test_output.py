"""The comparison of an output block with what its block printed."""

import pytest

from fenceproof.output import diff, matches


@pytest.mark.parametrize(
    ("expected", "printed"),
    [
        ("a\nb\n", "a\nb\n"),
        ("a  \nb\n", "a\nb   \n\n\n"),  # trailing spaces and blank lines are ignored
        ("took ... s\n", "took 0.31 s\n"),
        ("...\nlast\n", "one\ntwo\nlast\n"),
        ("first\n...\nlast\n", "first\nlast\n"),  # a ... line may match no line at all
        ("<Task ...>: ...\n", "<Task pending name='Task-1'>: done\n"),
        ("", ""),
    ],
)
def test_matching_output(expected: str, printed: str) -> None:
    assert matches(expected, printed)


@pytest.mark.parametrize(
    ("expected", "printed"),
    [
        ("a\nb\n", "a\nc\n"),
        ("a\n", "a\nb\n"),  # an extra line
        ("a\nb\n", "a\n"),  # a missing line
        ("took ... s\n", "took 0.31 ms\n"),
        ("first\n...\nlast\n", "first\nmiddle\n"),
        (" indented\n", "indented\n"),  # leading spaces count
        ("a.b\n", "axb\n"),  # text is literal, not a pattern
    ],
)
def test_mismatching_output(expected: str, printed: str) -> None:
    assert not matches(expected, printed)


def test_diff_shows_both_sides() -> None:
    text = diff("count: 3\nok\n", "count: 4\nok\n")
    assert "-count: 3" in text and "+count: 4" in text and text.startswith("--- expected")
