"""Grades the solution's tests: they pass, pass again on a used database, and catch a write that is lost."""


def test_suite_passes(suite_runs):
    first = suite_runs["first"]
    assert first["code"] == 0, (
        f"the tests fail against the unchanged app ({first['failed']} failed): {first['error']}"
    )
    assert first["passed"] >= 2, f"the suite ran {first['passed']} passing test(s); at least 2 expected"


def test_suite_passes_again_on_the_same_database(suite_runs):
    first, again = suite_runs["first"], suite_runs["again"]
    assert first["code"] != 0 or again["code"] == 0, (
        f"the tests passed once, then failed on the same database ({again['failed']} failed): {again['error']}"
    )


def test_suite_catches_a_lost_write(suite_runs):
    mutant = suite_runs["mutant"]
    assert mutant["code"] != 0, "the tests still pass when POST /items answers 201 without saving the item"
