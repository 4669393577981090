"""The machinery behind every exercise check: run the reader's code, never raise, say one line.

Each check prints exactly one line that a person reads and a grader parses::

    [mingrok check 3.1] PASS — ...
    [mingrok check 3.1] NOT ATTEMPTED YET — ...
    [mingrok check 3.1] FAIL — hint: ...

A stub that still raises ``NotImplementedError`` (or returns ``None``/``...``) counts as not
attempted. Any other exception is a failure whose message names the exception, so a reader's
typo never stops the notebook.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

PASS = "PASS"
NOT_ATTEMPTED = "NOT ATTEMPTED YET"
FAIL = "FAIL"
LINE_PATTERN = re.compile(
    r"^\[mingrok check (?P<id>[\w.]+)\] (?P<status>PASS|NOT ATTEMPTED YET|FAIL)"
)


class NotAttempted(Exception):
    """Raised inside a check when the reader's answer is still the stub."""


class CheckFailed(Exception):
    """Raised inside a check with the hint to show the reader."""


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    status: str
    message: str

    @property
    def line(self) -> str:
        return f"[mingrok check {self.check_id}] {self.status} — {self.message}"

    def assert_passed(self) -> None:
        """Print the line, and raise AssertionError unless it is a PASS: an autograder's test
        cell (nbgrader gives its points when the cell does not raise)."""
        print(self.line)
        if self.status != PASS:
            raise AssertionError(self.line)


history: list[CheckResult] = []  # every result of this session, in order (for graders and tests)


def exercise(check_id: str) -> Callable:
    """Turn ``body(answer, ...) -> success message`` into a check that prints one line.

    ``body`` raises :class:`NotAttempted` or :class:`CheckFailed`; anything else the reader's
    code raises becomes a failure too. The wrapped check returns None so that a notebook cell
    shows only the printed line; ``check.evaluate(...)`` returns the :class:`CheckResult` instead.
    """

    def decorate(body: Callable[..., str]) -> Callable[..., None]:
        def evaluate(*args, **kwargs) -> CheckResult:
            """The result, without printing it (what `course grade` asks for)."""
            try:
                return CheckResult(check_id, PASS, body(*args, **kwargs))
            except (NotAttempted, NotImplementedError):
                return CheckResult(
                    check_id,
                    NOT_ATTEMPTED,
                    "replace the stub with your code and run the cell again.",
                )
            except CheckFailed as failure:
                return CheckResult(check_id, FAIL, f"hint: {failure}")
            except Exception as error:  # the reader's code crashed: report, don't raise
                return CheckResult(
                    check_id, FAIL, f"your code raised {type(error).__name__}: {error}"
                )

        @functools.wraps(body)
        def check(*args, **kwargs) -> None:
            result = evaluate(*args, **kwargs)
            history.append(result)
            print(result.line)

        check.check_id = check_id
        check.evaluate = evaluate
        return check

    return decorate


def attempted(answer: object) -> object:
    """The answer itself, or NotAttempted if it is still a stub (None or ...)."""
    if answer is None or answer is Ellipsis:
        raise NotAttempted
    return answer


def call(function: Callable, *args, **kwargs) -> object:
    """Call the reader's function; a None result means the body is still a stub."""
    if not callable(function):
        raise CheckFailed(f"expected a function, got {type(function).__name__}")
    return attempted(function(*args, **kwargs))


def parse_line(line: str) -> tuple[str, str] | None:
    """(check id, status) from one printed line, or None if it is not a check line."""
    match = LINE_PATTERN.match(line.strip())
    return (match["id"], match["status"]) if match else None
