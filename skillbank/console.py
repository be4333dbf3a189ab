"""The ``skillbank`` console script: ``validate`` is answered without click, every other command by the click CLI.

An agent calls `skillbank validate` on every step, so its start-up has a budget (`make bench`: at most
twice `python -c pass`), and importing click alone costs more than the validation. A well-formed
``validate SKILL ACTION OVERRIDES [--format text|json]`` is answered here, with the output and exit
status of the click command (both print through :mod:`skillbank.validate_answer`). Anything else (help,
another option, an unknown skill or action, a bad ``SKILLBANK_ROOT``) goes to the click CLI, which
answers it as always: nothing has been read by then, so stdin is still there for it.
"""
from __future__ import annotations

import sys

FORMATS = ("text", "json")


def main(argv: list[str] | None = None) -> None:
    """Run ``skillbank`` with ``argv`` (default: the process's arguments); exits with the command's status."""
    args = sys.argv[1:] if argv is None else list(argv)
    call = plain_validate_call(args)
    if call is not None:
        status = answer_validate(*call)
        if status is not None:
            sys.exit(status)
    from skillbank.cli import main as cli

    cli.main(args=args, prog_name="skillbank")


def plain_validate_call(args: list[str]) -> tuple[str, str, str, str] | None:
    """``(skill, action, overrides, format)`` when ``args`` is a plain validate call, else None.

    Plain: ``validate`` and three arguments, at most one ``--format text|json`` (or ``--format=...``)
    anywhere after it; ``-`` (stdin) is an argument. Anything else is for click to parse and answer.
    """
    if not args or args[0] != "validate":
        return None
    positional: list[str] = []
    fmt = None
    rest = iter(args[1:])
    for token in rest:
        if token == "--format" or token.startswith("--format="):
            value = token.partition("=")[2] if "=" in token else next(rest, None)
            if fmt is not None or value not in FORMATS:
                return None
            fmt = value
        elif token.startswith("-") and token != "-":
            return None  # -h, --help, --, a misspelt option: click answers
        else:
            positional.append(token)
    if len(positional) != 3:
        return None
    return positional[0], positional[1], positional[2], fmt or "text"


def answer_validate(skill_name: str, action: str, source: str, fmt: str) -> int | None:
    """Print `skillbank validate`'s answer and return its exit status; None (nothing read, nothing printed)
    when the skill or action is unknown or the bank cannot be found: click's usage error answers that."""
    from skillbank.runtime.errors import SkillbankError
    from skillbank.runtime.skills import Skill

    try:
        skill = Skill.load(skill_name)
        skill.require_action(action)
    except SkillbankError:
        return None
    from skillbank.runtime.overrides import load_overrides
    from skillbank.validate_answer import printed, validation_report

    try:
        given = load_overrides(source)
        report = validation_report(skill, action, given)
    except SkillbankError as exc:  # unreadable overrides or a bad limit setting (2), broken skill files (1)
        return _error(str(exc), exc.exit_code)
    out, err, status = printed(report, len(given), fmt)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


def _error(message: str, status: int) -> int:
    """An error as click shows one: ``Error: <message>`` on stderr."""
    sys.stderr.write(f"Error: {message}\n")
    return status


if __name__ == "__main__":
    main()
