"""Docker platform: one detached container per job, submitted with a docker-compatible CLI.

The CLI is ``docker`` or ``podman`` (platform option ``cli``). The container
runs the command with the results folder and the job's local inputs mounted
at the same paths (the spec names absolute paths), plus the ``mounts`` option's
folders, and appends its output to ``<results_dir>/log.txt``. Options
``image``, ``gpus`` (0: no GPU request; podman gets CDI devices) and
``network`` set the rest. Environment variables are passed with ``-e NAME``
only; their values come from the environment of the CLI process.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from skillbank.runtime import settings
from skillbank.runtime.sdk.platforms.base import (
    CANCELED,
    COMPLETE,
    ERROR,
    LOG_NAME,
    PENDING,
    RUNNING,
    LaunchRequest,
    PlatformError,
    PlatformStatus,
)
from skillbank.runtime.sdk.platforms.options import check_platform_options, parse_mounts
from skillbank.runtime.sdk.platforms.submission import (
    SubmittingPlatform,
    check_command,
    env_names,
    mounts,
    one_line,
    read_log,
    render_template,
    results_path,
    run_tool,
    safe_name,
    submit_environment,
    tail_text,
    was_canceled,
)

_CONTAINER_ID = re.compile(r"^[0-9a-f]{12,64}$")


class DockerPlatform(SubmittingPlatform):
    name = "docker"
    submit_tool = "docker"

    def __init__(self, shm_size: str | None = None, stop_timeout_s: int = 10, *, cli: str = "docker",
                 image: str = "", gpus: int | None = None, network: str = "", mounts: str = ""):
        self.shm_size = shm_size or settings.docker_shm_size()
        self.stop_timeout_s = stop_timeout_s
        # the CLI's name is rendered unquoted: it is checked here too, not only by get_platform
        given = {"cli": cli, "image": image, "gpus": gpus, "network": network, "mounts": mounts}
        check_platform_options(self.name, {k: v for k, v in given.items() if v not in (None, "")})
        self.submit_tool = cli or "docker"  # the CLI every call goes through (podman takes docker's arguments)
        self.image = image
        self.gpus = gpus  # None: the request's (gpu_spec_key); 0: no GPU request
        self.network = network
        self.extra_mounts = parse_mounts(mounts)

    @staticmethod
    def container_name(job_id: str) -> str:
        return safe_name(f"skillbank-{job_id}")

    # -- render / launch ----------------------------------------------------------------------
    def render(self, request: LaunchRequest) -> str:
        check_command(request)
        image = self.image or request.image
        if not image:
            raise PlatformError("the docker platform needs a container image (skill_info container_image, or "
                                "--platform-option image=...)")
        pairs = [(host, target, False) for host, target in mounts(request)]
        pairs += [m for m in self.extra_mounts if not any(m[1] == target for _, target, _ in pairs)]
        for host, container, _ in pairs:
            if ":" in host or ":" in container:
                raise PlatformError(f"mount {host}:{container} has a ':' in a path, which docker -v cannot take")
        results = results_path(request)
        log_path = f"{results}/{LOG_NAME}"
        # exec: the command becomes the container's main process (gets docker stop's SIGTERM, exit code kept).
        inner = f"exec {shlex.join(request.command)} >> {shlex.quote(log_path)} 2>&1"
        return render_template(
            "docker_run.sh.j2", job_id=request.job_id, name=request.name or request.job_id, cli=self.submit_tool,
            container_name=self.container_name(request.job_id),
            gpus=int(request.gpus if self.gpus is None else self.gpus), network=self.network,
            shm_size=self.shm_size, mounts=pairs, env_names=env_names(request), workdir=results, image=image,
            inner=inner, log_path=log_path,
        )

    def _submit(self, request: LaunchRequest, text: str) -> str:
        done = run_tool(["bash", "-c", text], env=submit_environment(request), what=f"{self.submit_tool} run")
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        container = lines[-1] if lines else ""
        if not _CONTAINER_ID.match(container):
            raise PlatformError(f"{self.submit_tool} run printed no container id: "
                                f"{one_line(done.stdout + done.stderr)}")
        return container

    # -- status -------------------------------------------------------------------------------
    def status(self, backend_id: str, results_dir: Path) -> PlatformStatus:
        cli = self.submit_tool
        done = run_tool([cli, "inspect", "--type", "container", "--format", "{{json .State}}", backend_id],
                        check=False, what=f"{cli} inspect")
        if done.returncode != 0:
            if "no such" in (done.stderr + done.stdout).lower():
                if was_canceled(results_dir):
                    return PlatformStatus(CANCELED, detail="canceled; the container was removed")
                return PlatformStatus(ERROR, detail=f"container {backend_id[:12]} no longer exists")
            raise PlatformError(f"{cli} inspect failed (exit {done.returncode}): {one_line(done.stderr)}")
        try:
            state = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise PlatformError(f"{cli} inspect gave no container state: {one_line(done.stdout)}") from None
        return self._from_state(state, results_dir)

    @staticmethod
    def _from_state(state: dict, results_dir: Path) -> PlatformStatus:
        status = str(state.get("Status", "")).lower()
        if status in ("created", "configured", "initialized"):  # the last two are podman's words
            return PlatformStatus(PENDING, detail="container created")
        if status in ("running", "restarting", "paused", "stopping"):
            return PlatformStatus(RUNNING, detail=f"container {status}")
        code = state.get("ExitCode")
        code = int(code) if isinstance(code, int) else None
        signal = code - 128 if code is not None and code > 128 else None
        if was_canceled(results_dir):
            return PlatformStatus(CANCELED, exit_code=code, signal=signal, detail="canceled")
        if status == "exited" and code == 0:
            return PlatformStatus(COMPLETE, exit_code=0)
        detail = state.get("Error") or f"container {status}"
        if state.get("OOMKilled"):
            detail = "out of memory (OOMKilled)"
        return PlatformStatus(ERROR, exit_code=code, signal=signal, detail=str(detail))

    # -- logs / cancel ------------------------------------------------------------------------
    def logs(self, backend_id: str, results_dir: Path, tail: int | None = None) -> str:
        text = read_log(results_dir, tail)
        if text is not None:
            return text
        cli = self.submit_tool
        done = run_tool([cli, "logs", backend_id], check=False, what=f"{cli} logs")
        return tail_text(done.stdout + done.stderr, tail) if done.returncode == 0 else ""

    def _stop(self, backend_id: str, results_dir: Path) -> None:
        cli = self.submit_tool
        done = run_tool([cli, "stop", "--time", str(self.stop_timeout_s), backend_id], check=False,
                        timeout=self.stop_timeout_s + 60, what=f"{cli} stop")
        if done.returncode != 0 and "no such" not in done.stderr.lower():
            raise PlatformError(f"{cli} stop failed (exit {done.returncode}): {one_line(done.stderr)}")
