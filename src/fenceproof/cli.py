"""``fenceproof``: the command line. Exit 0 when every block holds, 1 when any fails, 2 for bad input."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fenceproof import budget
from fenceproof.corpus import SKILL_DIR, load_corpus
from fenceproof.models import BlockResult, ConfigError, Document, ServerUnavailable
from fenceproof.report import REPORT_PATH, ReportError, merge_reports, render
from fenceproof.verify import Pipeline, parse_shard, runtime, shard


def _verify(args: argparse.Namespace, out: Console, err: Console) -> int:
    corpus = load_corpus(Path.cwd(), [Path(p) for p in args.paths] or None)
    total = sum(len(d.blocks) for d in shard(corpus.documents, args.shard))
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with runtime() as rt, progress:
        task = progress.add_task("verifying", total=total)

        def advance(document: Document, results: list[BlockResult]) -> None:
            progress.update(task, advance=len(results), description=document.rel.rsplit("/", 1)[-1])

        pipeline = Pipeline(corpus, rt, cache="refresh" if args.no_cache else "use", jobs=args.jobs)
        pipeline.run_all(shard(corpus.documents, args.shard), advance)
    report = pipeline.report()  # after the servers stopped, so their stop time counts
    if pipeline.rerun:
        err.print(
            f"a block broke what the documents run beside it share (the server's databases, the engine's "
            f"connection or the fork server): {len(pipeline.rerun)} documents were run again one at a time, "
            "so each outcome below is its own"
        )
    render(report, out)
    for skill in corpus.skill_dirs:
        out.print(budget.render(budget.measure(skill)))
    report.write(corpus.root / REPORT_PATH)
    if args.report:
        report.write(Path(args.report))
    return 1 if report.failed else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="fenceproof", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    verify_cmd = sub.add_parser(
        "verify",
        help="lint, run and prove every code block of the skill",
        description=(
            "Lint, run and prove every fenced code block of the skill folders. The folders are named in the "
            'repository\'s pyproject.toml as [tool.fenceproof] skills = ["skills/my-skill", ...] (default: '
            f"{SKILL_DIR}); the repository is the nearest folder at or above the current one that has either."
        ),
    )
    verify_cmd.add_argument(
        "paths", nargs="*", help="Markdown files or folders (default: every skill folder)"
    )
    verify_cmd.add_argument("--report", metavar="FILE.json", help="also write the JSON report here")
    verify_cmd.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        metavar="N",
        help="verify N documents at once (default: the number of cores)",
    )
    verify_cmd.add_argument(
        "--no-cache",
        action="store_true",
        help="run every document, also those whose inputs did not change (their results refresh the cache)",
    )
    verify_cmd.add_argument(
        "--shard",
        metavar="K/N",
        type=_shard,
        help="verify only the Kth of N deterministic parts of the corpus",
    )
    report_cmd = sub.add_parser("report", help="work with JSON reports (report merge A.json B.json -o FILE)")
    report_sub = report_cmd.add_subparsers(dest="report_command", required=True)
    merge_cmd = report_sub.add_parser("merge", help="join the reports of shard runs into one report")
    merge_cmd.add_argument("reports", nargs="+", metavar="REPORT.json")
    merge_cmd.add_argument("-o", "--output", required=True, metavar="FILE.json")
    # These parse their own arguments (see `fenceproof index --help`, `fenceproof docs --help`).
    sub.add_parser(
        "index", help="regenerate the rule index, section lists and counts (--check: fail if stale)"
    )
    sub.add_parser("docs", help="build (docs build) or serve (docs serve) the documentation site")
    sub.add_parser(
        "eval", help="grade a solution against an evals task (eval grade), run an agent (eval run)"
    )
    return top


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def _shard(text: str) -> str:
    try:
        parse_shard(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _merge(args: argparse.Namespace, out: Console) -> int:
    data = merge_reports([Path(p) for p in args.reports])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    s = data["summary"]
    out.print(
        f"merged {len(args.reports)} reports: {s['blocks']} blocks in {s['documents']} documents, {s['failed']} failed"
    )
    return 1 if s["failed"] else 0


def _delegate(argv: list[str]) -> int | None:
    """The subcommands that own their argument parsing."""
    if argv[:1] == ["index"]:
        from fenceproof.index import main_index

        return main_index(argv[1:])
    if argv[:1] == ["docs"]:
        from fenceproof.docs import main_docs

        return main_docs(argv[1:])
    if argv[:1] == ["eval"]:
        from fenceproof.evals.cli import main_eval

        return main_eval(argv[1:])
    return None


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:  # a log or a pipe: wide enough that paths and messages are not wrapped
        console = Console(stderr=stderr, highlight=False, width=200)
    return console


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    delegated = _delegate(argv)
    if delegated is not None:
        return delegated
    args = parser().parse_args(argv)
    out = _console(stderr=False)
    err = _console(stderr=True)
    try:
        if args.command == "verify":
            return _verify(args, out, err)
        if args.command == "report":
            return _merge(args, out)
    except (ConfigError, ServerUnavailable, ReportError) as error:
        err.print(f"error: {error}", markup=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted: throwaway databases and servers were removed", markup=False)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
