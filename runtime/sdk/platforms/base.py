"""The one small interface every platform implements: launch, status, logs, cancel."""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from skillbank.runtime.errors import SkillbankError

PENDING, RUNNING, COMPLETE, ERROR, CANCELED = "Pending", "Running", "Complete", "Error", "Canceled"
STATUSES = (PENDING, RUNNING, COMPLETE, ERROR, CANCELED)
TERMINAL = (COMPLETE, ERROR, CANCELED)

# Files every platform keeps in a job's results folder, so failure analysis reads them all alike.
LOG_NAME = "log.txt"  # the command's stdout + stderr
EXIT_MARKER = ".exit"  # JSON {exit_code, ...} written when the command ends
CANCEL_MARKER = ".cancel"  # written before a cancel is sent, so a killed job reads as Canceled


class PlatformError(SkillbankError, RuntimeError):
    """A launch, status or cancel request the platform could not carry out (message is one line)."""


@dataclass
class LaunchRequest:
    """Everything a platform needs to run one job.

    ``env`` carries secrets (encryption key, cloud credentials) to the process;
    platforms pass them by name and never write their values into rendered
    submissions, logs or records.
    """

    job_id: str
    command: list[str]  # argv, e.g. ["action_recognition", "train", "-e", "/abs/results/<id>/spec.yaml"]
    results_dir: Path  # local folder of the job: log.txt, exit marker, outputs
    env: dict[str, str] = field(default_factory=dict, repr=False)  # secrets: never in a repr or log line
    image: str = ""  # container image (docker/slurm/kubernetes)
    gpus: int = 0  # from skill_info gpu_spec_key
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (host path, container path)
    name: str = ""  # human-readable job name (skill-action)
    nodes: int = 1  # machines of a data-parallel job (skill_info nodes_spec_key)
    tasks_per_node: int = 1  # processes per machine of a data-parallel job (one per GPU)


@dataclass
class PlatformStatus:
    state: str  # one of STATUSES
    exit_code: int | None = None
    signal: int | None = None
    detail: str = ""


class Platform(ABC):
    """A place jobs run. Implementations: local (embedded default), docker, slurm, kubernetes."""

    name: str = ""
    # Whether jobs run this installation's model code on this host, so an AutoML trial can train through its
    # rungs in one job that waits at each (runtime/rung_gates.py); elsewhere (TAO's container, other hosts)
    # each rung segment is its own job resuming from the previous checkpoint, as TAO's AutoML does.
    rung_gates: bool = False

    @abstractmethod
    def launch(self, request: LaunchRequest) -> str:
        """Start the job; return the backend id (pid, container id, slurm job id, k8s job name)."""

    @abstractmethod
    def status(self, backend_id: str, results_dir: Path) -> PlatformStatus:
        """The job's current state as the platform sees it."""

    @abstractmethod
    def logs(self, backend_id: str, results_dir: Path, tail: int | None = None) -> str:
        """The job's log text (the last ``tail`` lines when given)."""

    @abstractmethod
    def cancel(self, backend_id: str, results_dir: Path) -> None:
        """Stop the job; a job already finished is left as it is."""

    def render(self, request: LaunchRequest) -> str:
        """The submission this platform would make (``--dry-run`` prints it)."""
        return " ".join(request.command)

    def exit_fd(self, backend_id: str, results_dir: Path) -> int | None:
        """A file descriptor that becomes readable when the job ends (the caller closes it), or None when
        this platform cannot tell: a follower then looks again after its poll interval."""
        return None

    def keep_warm(self, programs: list[str], log: Path | None = None) -> AbstractContextManager[None]:
        """While inside, jobs of ``programs`` may start from a process that has their imports done (local
        only; see warm_start.py); elsewhere nothing changes. ``log`` takes what such a process prints."""
        return contextlib.nullcontext()
