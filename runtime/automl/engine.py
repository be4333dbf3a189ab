"""The AutoML engine's entry: ``run_automl`` runs (or resumes) an Optuna study whose trials are train jobs.

The parts, each in its own module:

* ``options.py``: :class:`AutoMLOptions`, everything a run is told (built by the CLI, embedded in
  runners, read here);
* ``trials.py``: the life of one trial: its train jobs per rung segment, its evaluate job, its outcome;
* ``study.py``: the study loop: ask within the budget, follow, tell; resume and several workers;
* ``workers.py``: several workers on one study: each trial's worker and heartbeat, the shared budget, a
  rerun picking up its own running trials;
* ``progress.py``: the run's summary and its one-line progress;
* ``../rung_gates.py``: gated trials (local platform) train in one job that waits at each rung for the
  study loop's word, instead of a job per rung segment.

``python -m skillbank.runtime.automl.engine REQUEST.json`` is the detached run of ``wait=False``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from skillbank.runtime.automl import workspace as ws
from skillbank.runtime.automl.options import AutoMLError, AutoMLOptions
from skillbank.runtime.automl.progress import ProgressCallback, print_progress_line
from skillbank.runtime.automl.study import AutoMLRun, AutoMLStopped
from skillbank.runtime.skills import Skill

__all__ = ["AutoMLError", "AutoMLOptions", "AutoMLStopped", "run_automl"]

REQUEST_FILE = "request.json"
LOG_FILE = "automl.log"


def run_automl(skill: str | Skill, overrides: dict[str, Any] | None, options: AutoMLOptions | None = None, *,
               on_progress: ProgressCallback | None = None, dry_run: bool = False, wait: bool = True,
               **changes: Any) -> dict[str, Any]:
    """Run (or resume) an AutoML study for ``skill``'s train action; returns the run's summary.

    Args:
        skill: the skill (name, folder or :class:`Skill`) whose train action is tuned.
        overrides: the train spec_overrides every trial starts from (dataset paths, label map, input
            size ...); the searched values are set on top.
        options: the run's :class:`AutoMLOptions` (defaults when None).
        on_progress: called with the summary and its ``line`` whenever the progress line changes.
        dry_run: check everything and return the plan (search space, budget, workspace, the baseline's
            train submission) without starting a job.
        wait: False starts the run in a detached process and returns at once (follow it with
            ``skillbank automl status WORKSPACE``).
        **changes: option fields set on top of ``options`` (``run_automl(skill, overrides,
            algorithm="asha", max_trials=4)``), checked like ``options`` itself.

    Raises AutoMLStopped (with ``.summary``) when repeated failures stop the run; AutoMLError,
    SearchSpaceError or SpecValidationError for bad input before anything runs; StudyStorageError (one
    line) when ``storage`` cannot be opened or another running worker holds the workspace.
    """
    options = (options or AutoMLOptions()).replace(**changes)
    run = AutoMLRun.prepare(skill, overrides, options, on_progress=on_progress)
    if dry_run:
        return run.preview()
    if not wait:
        return detach(run)
    return run.run()


def detach(run: AutoMLRun) -> dict[str, Any]:
    """Start ``run`` in a detached process (``wait=False``); its output goes to ``<workspace>/automl.log``."""
    # The key travels in the child's environment, never in request.json.
    request = {"skill": str(run.skill.path), "overrides": run.base, "options": run.options.to_dict()}
    path = run.workspace / REQUEST_FILE
    ws.write_json(path, request)
    log = open(run.workspace / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child process
    try:
        process = subprocess.Popen([sys.executable, "-m", "skillbank.runtime.automl.engine", str(path)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, **run.setup.secret_env})
    finally:
        log.close()
    return {"state": "launched", "pid": process.pid, "workspace": str(run.workspace),
            "log": str(run.workspace / LOG_FILE), "follow": f"skillbank automl status {run.workspace}"}


def _main(argv: list[str]) -> int:
    """``python -m skillbank.runtime.automl.engine REQUEST.json``: the detached run of ``wait=False``."""
    request = json.loads(Path(argv[0]).read_text())
    options = AutoMLOptions.from_dict(request["options"], where=argv[0])
    try:
        run_automl(request["skill"], request["overrides"], options, on_progress=print_progress_line(sys.stdout))
    except AutoMLStopped as exc:
        print(f"error: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
