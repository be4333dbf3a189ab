"""What the docker, SLURM and Kubernetes platforms share: Jinja templates, calling their CLIs, and
``SubmittingPlatform``, the launch / cancel sequence they all follow.

Submissions are rendered from the templates beside this module; the rendered
text is exactly what is submitted (and what ``--dry-run`` prints). Secrets
travel only in the environment of the submitting process, by name.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from abc import abstractmethod
from pathlib import Path

from skillbank.runtime.sdk.platforms.base import (
    CANCEL_MARKER,
    LOG_NAME,
    TERMINAL,
    LaunchRequest,
    Platform,
    PlatformError,
)
from skillbank.runtime.sdk.secrets import SECRET_ENV_NAMES, is_maskable

TEMPLATES = Path(__file__).resolve().parent / "templates"
TOOL_TIMEOUT_S = 60.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_template(template: str, **context) -> str:
    """Render ``templates/<name>`` (undefined names are errors; ``shq`` shell-quotes, ``tojson`` YAML-quotes,
    ``comment`` keeps a value inside its comment line)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # shell and YAML, not HTML: quoting is done by the filters below
    )
    env.filters["shq"] = lambda value: shlex.quote(str(value))
    env.filters["comment"] = comment_text
    return env.get_template(template).render(**context)


def comment_text(value: object) -> str:
    """``value`` for a ``#`` comment line: printable characters only, a newline (or any line break or control
    character) escaped as ``\\n`` ..., so no value can end the comment and start a line of its own."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(value))


def env_names(request: LaunchRequest) -> list[str]:
    """The names of the variables passed to the job (values are never rendered)."""
    names = sorted(request.env)
    for name in names:
        if not _ENV_NAME.match(name):
            raise PlatformError(f"environment variable name {name!r} is not valid (allowed: letters, digits, _)")
    return names


def results_path(request: LaunchRequest) -> str:
    """The results folder as an absolute path, symlinks kept (the spec and command name it that way)."""
    return os.path.abspath(request.results_dir)


def mounts(request: LaunchRequest) -> list[tuple[str, str]]:
    """The request's mounts plus the results folder at the same path (the spec names absolute paths)."""
    results = results_path(request)
    out: list[tuple[str, str]] = []
    for host, container in [*request.mounts, (results, results)]:
        pair = (str(host), str(container))
        if pair not in out and not any(c == pair[1] for _, c in out):
            out.append(pair)
    return out


def check_command(request: LaunchRequest) -> None:
    if not request.command:
        raise PlatformError("empty command: the action's skill_info `command` is blank")


def submit_environment(request: LaunchRequest) -> dict[str, str]:
    """The environment of the submitting CLI: ours plus the job's variables (secrets stay out of argv)."""
    return {**os.environ, **request.env}


def require_tool(tool: str) -> str:
    """The tool's path, or a PlatformError that says what to do instead."""
    found = shutil.which(tool)
    if not found:
        raise PlatformError(f"{tool} is not on PATH; use --dry-run to see the submission")
    return found


def has_tool(tool: str) -> bool:
    """Whether ``tool`` is on PATH (for optional tools whose absence is not an error)."""
    return shutil.which(tool) is not None


def run_tool(argv: list[str], *, env: dict[str, str] | None = None, stdin: str | None = None,
             timeout: float = TOOL_TIMEOUT_S, check: bool = True, what: str = "") -> subprocess.CompletedProcess:
    """Run a platform CLI; a failure is a one-line PlatformError with the tool's own message.

    ``what`` names the request in messages (default: the tool and its subcommand).
    """
    require_tool(argv[0])
    what = what or " ".join(argv[:2])
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PlatformError(f"{what} did not answer in {timeout:.0f}s") from None
    except OSError as err:
        raise PlatformError(f"cannot run {argv[0]}: {err.strerror or err}") from None
    if check and done.returncode != 0:
        answer = _scrub(one_line(done.stderr or done.stdout), env)
        raise PlatformError(f"{what} failed (exit {done.returncode}): {answer}")
    return done


def _scrub(text: str, env: dict[str, str] | None) -> str:
    """Hide the values the job's environment added (its secrets), should a tool ever echo them."""
    for name, value in (env or {}).items():
        added = value != os.environ.get(name)
        if value and is_maskable(value) and (added or name in SECRET_ENV_NAMES):
            text = text.replace(value, "***")
    return text


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tail_text(text: str, tail: int | None) -> str:
    if tail is None:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[-tail:]) if tail > 0 else ""


def read_log(results_dir: Path, tail: int | None = None) -> str | None:
    """The job's ``log.txt``, or None when it does not exist (yet)."""
    path = Path(results_dir) / LOG_NAME
    if not path.is_file():
        return None
    return tail_text(path.read_text(errors="replace"), tail)


def mark_canceled(results_dir: Path) -> None:
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    (Path(results_dir) / CANCEL_MARKER).write_text("canceled\n")


def was_canceled(results_dir: Path) -> bool:
    return (Path(results_dir) / CANCEL_MARKER).exists()


def safe_name(text: str, limit: int = 63) -> str:
    """A lower-case DNS-1123 style name (docker containers, k8s objects, slurm job names)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name[:limit].rstrip("-")) or "skillbank-job"



class SubmittingPlatform(Platform):
    """A platform that hands jobs to a cluster or container CLI (``submit_tool``).

    Launch renders the submission first (bad requests fail before any tool is
    needed), then checks the tool and creates the results folder; cancel
    leaves a finished job alone and writes the cancel marker before stopping
    the job, so a job killed by the cancel is read as Canceled, not Error.
    """

    submit_tool: str = ""

    def launch(self, request: LaunchRequest) -> str:
        text = self.render(request)
        require_tool(self.submit_tool)
        Path(request.results_dir).mkdir(parents=True, exist_ok=True)
        return self._submit(request, text)

    def cancel(self, backend_id: str, results_dir: Path) -> None:
        if self.status(backend_id, results_dir).state in TERMINAL:
            return
        mark_canceled(results_dir)
        self._stop(backend_id, results_dir)

    @abstractmethod
    def _submit(self, request: LaunchRequest, text: str) -> str:
        """Submit the rendered ``text`` (the tool is there, the results folder exists); return the backend id."""

    @abstractmethod
    def _stop(self, backend_id: str, results_dir: Path) -> None:
        """Ask the platform to stop the job (the cancel marker is already written)."""
