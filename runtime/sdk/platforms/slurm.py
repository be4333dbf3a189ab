"""SLURM platform: an sbatch script per job, submitted with the real ``sbatch``.

The script (``<results_dir>/job.sbatch``) writes its output to
``<results_dir>/log.txt`` and runs the command in a container runtime
(``apptainer``/``singularity`` exec of ``docker://IMAGE``, or pyxis ``srun
--container-image``) or directly (``none``: this installation's command, so
the nodes must see it and the job's paths on a shared filesystem); choose with
the ``container`` option or ``SKILLBANK_SLURM_CONTAINER``. The other platform
options (``partition``, ``account``, ``time``, ``gpus``, ``image``) become
``#SBATCH`` lines; ``gpus=0`` requests no GPU. A data-parallel job (several
nodes or tasks per node) runs its command once per task under ``srun``, and
Lightning reads its rank from SLURM's environment. Secrets reach the job
through sbatch's exported environment, by name only.

Status needs no accounting database: ``sacct`` when it answers, else
``squeue`` while the job is queued or running, else ``scontrol show job``
(kept for MinJobAge seconds), else the exit marker the script writes.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

from skillbank.runtime import settings
from skillbank.runtime.sdk.platforms.base import (
    CANCELED,
    COMPLETE,
    ERROR,
    EXIT_MARKER,
    LOG_NAME,
    PENDING,
    RUNNING,
    TERMINAL,
    LaunchRequest,
    PlatformError,
    PlatformStatus,
)
from skillbank.runtime.sdk.platforms.options import check_platform_options
from skillbank.runtime.sdk.platforms.submission import (
    SubmittingPlatform,
    check_command,
    env_names,
    has_tool,
    mounts,
    one_line,
    read_log,
    render_template,
    results_path,
    run_tool,
    safe_name,
    submit_environment,
    was_canceled,
)

CONTAINERS = settings.SLURM_CONTAINERS  # one list: settings checks $SKILLBANK_SLURM_CONTAINER against it too
SCRIPT_NAME = "job.sbatch"
_SUBMITTED = re.compile(r"Submitted batch job (\d+)")
_PARSABLE = re.compile(r"^(\d+)(;\S+)?$")
_STATES = {
    "PENDING": PENDING, "CONFIGURING": PENDING, "REQUEUED": PENDING, "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING, "RESV_DEL_HOLD": PENDING,
    "RUNNING": RUNNING, "COMPLETING": RUNNING, "SUSPENDED": RUNNING, "STAGE_OUT": RUNNING,
    "SIGNALING": RUNNING, "RESIZING": RUNNING, "STOPPED": RUNNING,
    "COMPLETED": COMPLETE,
    "CANCELLED": CANCELED,
}


class SlurmPlatform(SubmittingPlatform):
    name = "slurm"
    submit_tool = "sbatch"

    def __init__(self, container: str | None = None, *, partition: str = "", account: str = "", time: str = "",
                 gpus: int | None = None, image: str = ""):
        self.container = container or settings.slurm_container()
        if self.container and self.container not in CONTAINERS:
            raise PlatformError(f"SLURM container runtime {self.container!r} is not known "
                                f"(allowed: {', '.join(CONTAINERS)})")
        # #SBATCH lines take no quoting: the values are checked here too, not only by get_platform
        given = {"partition": partition, "account": account, "time": time, "image": image, "gpus": gpus}
        checked = check_platform_options(self.name, {k: v for k, v in given.items() if v not in (None, "")})
        self.partition, self.account, self.time = partition, account, time
        self.gpus = checked.get("gpus")  # None: the request's (gpu_spec_key); 0: no GPU request at all
        self.image = image

    # -- render / launch ----------------------------------------------------------------------
    def render(self, request: LaunchRequest) -> str:
        check_command(request)
        results = results_path(request)
        # #SBATCH lines are not parsed by a shell: no quoting is possible there.
        if re.search(r"[\s%\"'\\]", results):
            raise PlatformError(f"results folder {results!r} has a blank, quote, backslash or %, "
                                f"which #SBATCH cannot take")
        image = self.image or request.image
        container = self.container or ("apptainer" if image else "none")
        if container != "none" and not image:
            raise PlatformError(f"SLURM container runtime {container!r} needs a container image")
        pairs = mounts(request)
        if container != "none":
            for host, target in pairs:
                if ":" in host or ":" in target or "," in host + target:
                    raise PlatformError(f"mount {host}:{target} has a ':' or ',' in a path, which {container} "
                                        f"cannot take")
        command = installed_command(request.command) if container == "none" else list(request.command)
        nodes, tasks = max(1, int(request.nodes)), max(1, int(request.tasks_per_node))
        return render_template(
            "sbatch.sh.j2", job_id=request.job_id, name=request.name or request.job_id,
            job_name=safe_name(request.name or f"skillbank-{request.job_id}"),
            gpus=int(request.gpus if self.gpus is None else self.gpus), nodes=nodes, tasks_per_node=tasks,
            distributed=nodes * tasks > 1, partition=self.partition, account=self.account, time=self.time,
            log_path=f"{results}/{LOG_NAME}", results_dir=results, env_names=env_names(request),
            container=container, image=image, mounts=pairs,
            mounts_csv=",".join(f"{h}:{t}" for h, t in pairs), command=shlex.join(command),
            exit_tmp=f"{results}/{EXIT_MARKER}.tmp", exit_marker=f"{results}/{EXIT_MARKER}",
        )

    def _submit(self, request: LaunchRequest, text: str) -> str:
        script = Path(request.results_dir) / SCRIPT_NAME
        script.write_text(text)  # holds no secret: variables are exported by name
        done = run_tool(["sbatch", str(script)], env=submit_environment(request), what="sbatch")
        out = done.stdout.strip()
        match = _SUBMITTED.search(out) or _PARSABLE.match(out)
        if not match:
            raise PlatformError(f"sbatch printed no job id: {one_line(done.stdout + done.stderr)}")
        return match.group(1)

    # -- status -------------------------------------------------------------------------------
    def status(self, backend_id: str, results_dir: Path) -> PlatformStatus:
        state = self._sacct(backend_id) or self._squeue(backend_id) or self._scontrol(backend_id)
        if state is not None:
            return state
        marker = Path(results_dir) / EXIT_MARKER
        if marker.is_file():
            try:
                code = json.loads(marker.read_text()).get("exit_code")
            except ValueError:
                code = None
            if was_canceled(results_dir):
                return PlatformStatus(CANCELED, exit_code=code, detail="canceled")
            if code == 0:
                return PlatformStatus(COMPLETE, exit_code=0)
            return PlatformStatus(ERROR, exit_code=code, detail=f"exit code {code}")
        if was_canceled(results_dir):
            return PlatformStatus(CANCELED, detail="canceled")
        return PlatformStatus(ERROR, detail=f"SLURM no longer knows job {backend_id} and it left no exit marker")

    @staticmethod
    def _sacct(job: str) -> PlatformStatus | None:
        if not has_tool("sacct"):
            return None
        done = run_tool(["sacct", "-j", job, "-X", "-n", "-P", "-o", "State,ExitCode"], check=False, what="sacct")
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            return None  # accounting off or the job not recorded yet: squeue / the marker decide
        state, _, exit_code = lines[0].partition("|")
        return _slurm_status(state, exit_code)

    @staticmethod
    def _squeue(job: str) -> PlatformStatus | None:
        """The state while the job waits or runs; None once it ended (scontrol or the marker tell how)."""
        if not has_tool("squeue"):
            return None
        done = run_tool(["squeue", "-h", "-j", job, "-o", "%T"], check=False, what="squeue")
        word = done.stdout.strip().split()[0] if done.returncode == 0 and done.stdout.strip() else ""
        if _STATES.get(word) not in (PENDING, RUNNING):
            return None
        return PlatformStatus(_STATES[word], detail=f"SLURM state {word}")

    @staticmethod
    def _scontrol(job: str) -> PlatformStatus | None:
        """State and exit code from slurmctld's memory of the job (kept MinJobAge seconds after it ends)."""
        if not has_tool("scontrol"):
            return None
        done = run_tool(["scontrol", "-o", "show", "job", job], check=False, what="scontrol show job")
        fields = dict(item.partition("=")[::2] for item in done.stdout.split() if "=" in item)
        if done.returncode != 0 or "JobState" not in fields:
            return None  # purged already: the exit marker decides
        return _slurm_status(fields["JobState"], fields.get("ExitCode", ""))

    # -- logs / cancel ------------------------------------------------------------------------
    def logs(self, backend_id: str, results_dir: Path, tail: int | None = None) -> str:
        return read_log(results_dir, tail) or ""

    def _stop(self, backend_id: str, results_dir: Path) -> None:
        run_tool(["scancel", backend_id], what="scancel")


def _slurm_status(state: str, exit_code: str) -> PlatformStatus:
    """A SLURM job state word (``CANCELLED by 0``, ``COMPLETED``) and ``CODE:SIGNAL`` as a PlatformStatus."""
    word = state.split()[0].rstrip("+") if state.split() else ""
    code, _, sig = exit_code.partition(":")
    code_i = int(code) if code.isdigit() else None
    sig_i = int(sig) if sig.isdigit() and int(sig) else None
    mapped = _STATES.get(word)
    if mapped == COMPLETE and code_i not in (0, None):
        mapped = ERROR
    if mapped is None:  # FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, BOOT_FAIL, DEADLINE ...
        detail = "out of memory (OUT_OF_MEMORY)" if word == "OUT_OF_MEMORY" else f"SLURM state {state.strip()}"
        return PlatformStatus(ERROR, exit_code=code_i, signal=sig_i, detail=detail)
    return PlatformStatus(mapped, exit_code=code_i if mapped in TERMINAL else None,
                          signal=sig_i if mapped in TERMINAL else None, detail=f"SLURM state {state.strip()}")


def installed_command(command: list[str]) -> list[str]:
    """``command`` with its program taken from this installation (``<venv>/bin``) when it is there.

    Container ``none`` runs on the node what submitted here: the venv must be on a filesystem the nodes see.
    """
    program = Path(sys.executable).parent / command[0]
    if "/" not in command[0] and program.is_file() and os.access(program, os.X_OK):
        return [str(program), *command[1:]]
    return list(command)
