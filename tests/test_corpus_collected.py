"""CI must not pass with the corpus silently uncollected: every block of the skill is a pytest item."""

import pytest

from fenceproof.corpus import find_repo_root, load_corpus
from fenceproof.pytest_plugin import BlockItem


def test_every_block_of_the_skill_is_a_collected_item(request: pytest.FixtureRequest) -> None:
    corpus = load_corpus(find_repo_root(request.config.rootpath))
    expected = {(b.rel, b.line) for b in corpus.blocks()}
    collected = {(i.block.rel, i.block.line) for i in request.session.items if isinstance(i, BlockItem)}
    assert expected, "the skill has no code blocks"
    missing = sorted(expected - collected)
    assert not missing, (
        f"{len(missing)} corpus blocks were not collected (first: {missing[0][0]}:{missing[0][1]}); "
        "run pytest from the repository root without narrowing it to tests/"
    )
