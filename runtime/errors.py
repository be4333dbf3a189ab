"""``SkillbankError``: the one base class of every error skillbank raises on purpose.

Each domain keeps its own subclass (``SkillError``, ``SpecValidationError``, ``PlatformError``,
``S3Error`` ...) and the built-in class it always had (``ValueError``, ``LookupError``,
``RuntimeError``), so code that catches those keeps working. The ``skillbank`` command line and
the generated runners catch this one type: its message is written for the user (one line, or one
line per problem, naming the key, the value and what is allowed) and is shown without a traceback.
Imports nothing, so the command line pays nothing for it.
"""
from __future__ import annotations


class SkillbankError(Exception):
    """An error whose message is meant for the user: shown as it is, without a traceback.

    ``exit_code`` is the command line's exit status when nothing more specific handles the error:
    1 (it failed), or 2 for input or settings that cannot be used.
    """

    exit_code = 1
