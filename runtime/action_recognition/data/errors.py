"""The one error type of the data pipeline: bad data or data settings, found before training starts."""
from __future__ import annotations

from skillbank.runtime.errors import SkillbankError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


class DataError(SkillbankError, ValueError):
    """A data set that cannot be used as given. The message names the path (or the setting) and the fix.

    ``problems`` holds one line per problem when a scan found several; the message lists them all.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems) if problems else [message]
        super().__init__(message)

    @classmethod
    def from_problems(cls, what: str, problems: list[str], limit: int = 20) -> DataError:
        """One error for every problem a scan found (the first ``limit`` spelled out)."""
        if len(problems) == 1:
            return cls(problems[0], problems)
        shown = "\n".join(f"  - {p}" for p in problems[:limit])
        more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
        return cls(f"{len(problems)} problems in {what}:\n{shown}{more}", problems)


def is_archive(path: str) -> bool:
    """True when ``path`` names a tar archive (what the runner extracts, not what the model reads)."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)
