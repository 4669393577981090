"""The part of `course grade` that runs inside a submission's kernel, after the submission's cells.

:func:`grading_cell` writes the code the grader sends for one exercise. That code first drops
every ``mingrok`` module from ``sys.modules`` (:func:`fresh_import`, which nbgrader's test cells
use too) and imports the check and this module again, so the checks it runs are read from the
installed files: whatever the submission did to ``mingrok.checks`` (a check
replaced by a lambda that prints PASS, a reference function patched) or to the names in its own
namespace (its own ``check_soft_cap``) is not what runs. It then calls the master chapter's check
on the objects the submission bound to the master's argument names, and writes the result to a
file the grader named for this run, with a secret the grader made for it: the grade never comes
from text the submission printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

NOT_DEFINED = "{name} is not defined: the exercise cell is missing, or did not run"


def fresh_import(function: str) -> str:
    """Source that drops every loaded ``mingrok`` module, then imports the check ``function``
    from the installed files: what the notebook did to mingrok's modules no longer counts."""
    return (
        "import sys as _mingrok_sys\n\n"
        "for _mingrok_module in [\n"
        "    m for m in _mingrok_sys.modules if m.split('.')[0] == 'mingrok'\n"
        "]:\n"
        "    del _mingrok_sys.modules[_mingrok_module]\n"
        f"from mingrok.checks import {function}\n"
    )


def grading_cell(function: str, arguments: Sequence[str], result_path: Path, secret: str) -> str:
    """Source of the cell that grades one exercise in the submission's kernel."""
    return (
        fresh_import(function)
        + "from mingrok.course.grading_kernel import grade as _mingrok_grade\n\n"
        f"_mingrok_grade({function}, {list(arguments)!r}, globals(), "
        f"{str(result_path)!r}, {secret!r})"
    )


def grade(
    check: Callable, arguments: Sequence[str], namespace: Mapping, result_path: str, secret: str
) -> None:
    """Run ``check`` on the submission's objects named by ``arguments``; write the result file."""
    from mingrok import checks

    values = []
    for source in arguments:
        try:
            values.append(eval(source, dict(namespace)))  # the master's argument, e.g. cap_logits
        except NameError:
            result = {"status": checks.NOT_ATTEMPTED, "message": NOT_DEFINED.format(name=source)}
            break
    else:
        try:
            outcome = check.evaluate(*values)
            result = {"status": outcome.status, "message": outcome.message}
        except KeyboardInterrupt:  # the grader's time limit: no result, it says "timed out"
            raise
        except BaseException as error:  # SystemExit from the submission's code, ...
            result = {"status": checks.FAIL, "message": f"your code raised {type(error).__name__}"}
    result.update(check_id=check.check_id, secret=secret)
    with Path(result_path).open("x", encoding="utf-8") as file:  # a second result would fail
        json.dump(result, file)
