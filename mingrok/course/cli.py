"""``python -m mingrok course run|student|grade|nbgrader``: the instructors' commands.

:func:`add_course_parser` registers the group on the main parser; the heavy imports (papermill,
PyYAML, nbformat) happen only when a course command runs, so the other commands start as fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..arguments import positive


def add_course_parser(subparsers: argparse._SubParsersAction) -> None:
    course = subparsers.add_parser(
        "course",
        help="run chapters with other parameters, make student copies, grade, export to nbgrader",
        description="Tools for teaching with the chapters (see the book's 'For instructors').",
    )
    commands = course.add_subparsers(dest="course_command", required=True, metavar="COMMAND")
    _add_run(commands)
    _add_student(commands)
    _add_grade(commands)
    _add_nbgrader(commands)
    course.set_defaults(threads=None)  # the main parser reads it before any command runs


def _add_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="execute chapters with papermill, with other parameter values or a grid of them",
        description=(
            "Execute chapters with papermill, each run in OUT/<chapter>/<run>/ with the chapter "
            "folder as working directory, then write OUT/summary.md and OUT/summary.csv "
            "(parameters, status, wall time and the metrics each chapter records). Values are "
            "checked against each chapter's parameters cell before anything runs."
        ),
    )
    _add_chapter_names(parser)
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a value for every chosen chapter (repeatable); read as the default's type",
    )
    parser.add_argument(
        "-f",
        "--params-file",
        type=Path,
        metavar="YAML",
        help="`parameters:` (fixed), `grid:` (lists, one run per combination), `chapters:`",
    )
    parser.add_argument("--jobs", type=positive, default=1, help="runs at the same time (1)")
    parser.add_argument("--timeout", type=positive, default=None, help="seconds per run (none)")
    parser.add_argument("--out", type=Path, help="a new folder (default runs/course/<time>)")
    _add_chapters_folder(parser)
    parser.set_defaults(run=run_command)


def _add_student(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "student",
        help="write copies of the chapters without their solutions",
        description=(
            "Write student copies: solution blocks removed, outputs of exercise and check cells "
            "cleared, everything else unchanged."
        ),
    )
    _add_chapter_names(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/student"), help="(runs/student)")
    _add_chapters_folder(parser)
    parser.set_defaults(run=student_command)


def _add_grade(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "grade",
        help="run submitted notebooks and grade them with the chapters' own checks",
        description=(
            "Run each submitted notebook in its own temporary folder and kernel, then run the "
            "master chapter's checks in that kernel, against the names the student defined, with "
            "mingrok imported afresh. Writes OUT/grades.md|csv (one row per notebook, one column "
            "per exercise), OUT/students.md|csv and OUT/chapters.md|csv (totals), and one "
            "feedback file per notebook in OUT/feedback/. A submission is graded by the chapter "
            "of its file name (03_attention.ipynb) unless --chapter says which."
        ),
    )
    parser.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION")
    parser.add_argument("--chapter", help="grade every submission with this chapter (number/name)")
    _add_chapters_folder(parser)
    parser.add_argument("--jobs", type=positive, default=1, help="notebooks at the same time (1)")
    parser.add_argument(
        "--timeout", type=positive, default=600, help="seconds for all of a notebook's cells (600)"
    )
    parser.add_argument(
        "--cell-timeout",
        type=positive,
        default=120,
        help="seconds for any one cell or check (120)",
    )
    parser.add_argument("--out", type=Path, help="a new folder (default runs/grades/<time>)")
    parser.set_defaults(run=grade_command)


def _add_nbgrader(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "nbgrader",
        help="write the chapters as an nbgrader course (source/ assignments and its config)",
        description=(
            "Write COURSE_DIR/nbgrader_config.py and COURSE_DIR/source/<chapter>/<chapter>.ipynb "
            "for each chapter: the exercise stubs become solution cells holding the chapter's "
            "own solution between ### BEGIN SOLUTION and ### END SOLUTION, each check becomes an "
            "autograded test cell that raises unless the check passed, the rest is locked."
        ),
    )
    _add_chapter_names(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="COURSE_DIR")
    parser.add_argument("--course-id", default="mingrok", help="nbgrader's course id (mingrok)")
    _add_chapters_folder(parser)
    parser.set_defaults(run=nbgrader_command)


def _add_chapter_names(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "chapters", nargs="*", metavar="CHAPTER", help="number, name or path (default: all)"
    )


def _add_chapters_folder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chapters",
        dest="chapters_folder",
        type=Path,
        default=Path("chapters"),
        metavar="DIR",
        help="where the chapters are (chapters)",
    )


def run_command(args: argparse.Namespace) -> int:
    from .notebooks import check_output_folder
    from .run import load_settings, plan_runs, run_chapters, write_summary

    settings = load_settings(args.params_file) if args.params_file else {}
    runs = plan_runs(args.chapters, dict(args.parameter), settings, args.chapters_folder)
    out = args.out or Path("runs", "course", time.strftime("%Y%m%d-%H%M%S"))
    check_output_folder(out, {run.chapter.parent for run in runs})
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(runs)} run(s) of {len({r.chapter for r in runs})} chapter(s) into {out}/")
    results = run_chapters(runs, out, jobs=args.jobs, timeout_s=args.timeout)
    print(write_summary(results, out), end="")
    print(f"\nsummary: {out / 'summary.md'}, {out / 'summary.csv'}")
    return 0 if all(r.execution.status == "ok" for r in results) else 1


def student_command(args: argparse.Namespace) -> int:
    from .notebooks import resolve_chapters
    from .student import write_student_copies

    chapters = resolve_chapters(args.chapters, args.chapters_folder)
    for path in write_student_copies(chapters, args.out):
        print(path)
    return 0


def grade_command(args: argparse.Namespace) -> int:
    from .grade import find_submissions, grade, write_grades
    from .notebooks import check_output_folder

    submissions = find_submissions(args.submissions, args.chapters_folder, args.chapter)
    out = args.out or Path("runs", "grades", time.strftime("%Y%m%d-%H%M%S"))
    check_output_folder(out, [p for p in args.submissions if p.is_dir()])
    out.mkdir(parents=True, exist_ok=True)
    print(f"grading {len(submissions)} notebook(s) into {out}/", file=sys.stderr)
    results = grade(
        submissions, out, jobs=args.jobs, timeout_s=args.timeout, cell_timeout_s=args.cell_timeout
    )
    print(write_grades(results, out), end="")
    tables = ", ".join(str(out / f"{name}.md") for name in ("grades", "students", "chapters"))
    print(f"\ngrades: {tables} (and .csv); feedback: {out / 'feedback'}/")
    return 0


def nbgrader_command(args: argparse.Namespace) -> int:
    from .nbgrader import write_course
    from .notebooks import resolve_chapters

    chapters = resolve_chapters(args.chapters, args.chapters_folder)
    for path in write_course(chapters, args.out, args.course_id):
        print(path)
    return 0
