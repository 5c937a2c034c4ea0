"""Run the project's tests (tests/) once per LABEL=APP_FILE argument, in this one process, with
app/main.py replaced by APP_FILE each time; write {label: {code, passed, failed, error}} as JSON."""

import json
import shutil
import sys

import pytest


class Outcomes:
    def __init__(self) -> None:
        self.passed = self.failed = 0
        self.error = ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.passed and report.when == "call":
            self.passed += 1
        elif report.failed:
            self.failed += 1
            if not self.error:
                crash = getattr(report.longrepr, "reprcrash", None)
                self.error = f"{report.nodeid.split('::')[-1]}: {crash.message if crash else report.longrepr}"

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not self.error:
            self.failed += 1
            self.error = f"collecting {report.nodeid}: {str(report.longrepr).strip().splitlines()[-1]}"


def main() -> None:
    out, runs = sys.argv[1], sys.argv[2:]
    results: dict[str, dict[str, object]] = {}
    for run in runs:
        label, app_file = run.split("=", 1)
        shutil.copy(app_file, "app/main.py")
        for name in [n for n in sys.modules if n.split(".")[0] in ("app", "tests", "conftest")]:
            del sys.modules[name]
        outcomes = Outcomes()
        code = pytest.main(
            [
                "tests",
                "-q",
                "-x",
                "-p",
                "no:cacheprovider",
                "-p",
                "pytest_asyncio.plugin",
                "-p",
                "anyio.pytest_plugin",
            ],
            plugins=[outcomes],
        )
        error = " ".join(outcomes.error.split())
        if len(error) > 240:
            error = f"{error[:120]} ... {error[-110:]}"
        results[label] = {
            "code": int(code),
            "passed": outcomes.passed,
            "failed": outcomes.failed,
            "error": error,
        }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
