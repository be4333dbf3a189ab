"""Every ``SKILLBANK_*`` environment variable: its name, its default and how its value is read.

This module is the one place that reads them. Each reader returns the value the rest of the code uses
(a folder, a number, a name) and turns a value that cannot be used into a :class:`SettingError` whose one
line names the variable, the value and what is allowed (the command line shows it and exits 2). Unset
or blank means the default. Values are read at each call, not cached: tests and long-lived processes
(the MCP server) see a change at once.

:data:`SETTINGS` lists every variable with its default and meaning; ``docs/settings.md`` is the same
table for people, and a test keeps the two and the code in step. Pure apart from reading
``os.environ``; imports nothing heavy (``skillbank validate`` loads it).
"""
from __future__ import annotations

import os

from skillbank.runtime.errors import SkillbankError

TYPE_CHECKING = False  # pathlib only where a folder is read: validate's start-up budget, see bench/cli_startup.py
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "SETTINGS", "SLURM_CONTAINERS", "SettingError", "bank_root", "docker_shm_size", "encryption_key", "env_number",
    "k8s_namespace", "limit", "results_root", "rung_gate_folder", "s3_addressing_style", "s3_connect_timeout",
    "s3_max_attempts", "s3_read_timeout", "slurm_container", "state_dir",
]


class SettingError(SkillbankError, ValueError):
    """An environment setting that cannot be used; the message names the variable, its value and what is allowed."""

    exit_code = 2  # the machine's settings, not the command, are wrong


# -- the variables ---------------------------------------------------------------------------------

BANK_ROOT = "SKILLBANK_ROOT"
STATE_DIR = "SKILLBANK_STATE_DIR"
RESULTS_ROOT = "SKILLBANK_RESULTS_ROOT"
ENCRYPTION_KEY = "SKILLBANK_ENCRYPTION_KEY"
CALLER_ENCRYPTION_KEY = "SKILLBANK_CALLER_ENCRYPTION_KEY"
MAX_YAML_NODES = "SKILLBANK_MAX_YAML_NODES"
MAX_NESTING = "SKILLBANK_MAX_NESTING"
MAX_ECHO_CHARS = "SKILLBANK_MAX_ECHO_CHARS"
MAX_PROBLEMS = "SKILLBANK_MAX_PROBLEMS"
ARCHIVE_MAX_RATIO = "SKILLBANK_ARCHIVE_MAX_RATIO"
ARCHIVE_MAX_BYTES = "SKILLBANK_ARCHIVE_MAX_BYTES"
S3_MAX_ATTEMPTS = "SKILLBANK_S3_MAX_ATTEMPTS"
S3_CONNECT_TIMEOUT = "SKILLBANK_S3_CONNECT_TIMEOUT"
S3_READ_TIMEOUT = "SKILLBANK_S3_READ_TIMEOUT"
S3_ADDRESSING_STYLE = "SKILLBANK_S3_ADDRESSING_STYLE"
DOCKER_SHM_SIZE = "SKILLBANK_DOCKER_SHM_SIZE"
SLURM_CONTAINER = "SKILLBANK_SLURM_CONTAINER"
K8S_NAMESPACE = "SKILLBANK_K8S_NAMESPACE"
RUNG_GATE = "SKILLBANK_RUNG_GATE"

DEFAULT_STATE_DIR = "~/.local/state/skillbank"
DEFAULT_RESULTS_ROOT = "~/skillbank-results"
S3_ADDRESSING_STYLES = ("path", "virtual", "auto")  # botocore's values
SLURM_CONTAINERS = ("apptainer", "singularity", "pyxis", "none")  # what the slurm platform can run a job with
# one default each, used by the reader and shown in SETTINGS (docs/settings.md)
DEFAULT_S3_MAX_ATTEMPTS = 5
DEFAULT_S3_CONNECT_TIMEOUT = 10.0  # seconds
DEFAULT_S3_READ_TIMEOUT = 60.0  # seconds
DEFAULT_DOCKER_SHM_SIZE = "8g"

# limit name -> (default, minimum)
_LIMITS: dict[str, tuple[int, int]] = {
    # values after YAML aliases are expanded: a TAO spec has a few hundred, a big label map some thousands
    MAX_YAML_NODES: (1_000_000, 1),
    # mapping/list levels in an overrides or spec document (a spec nests 4 deep)
    MAX_NESTING: (100, 1),
    # characters of a value echoed back in a message
    MAX_ECHO_CHARS: (200, 20),
    # problems listed by one validation (the rest are counted)
    MAX_PROBLEMS: (100, 1),
    # uncompressed / compressed size of an archive: video frames (JPEG/PNG) barely compress (~1-2), tar
    # headers of small files a little more; a decompression bomb is in the thousands
    ARCHIVE_MAX_RATIO: (100, 1),
    # bytes an archive may extract to: 4 TiB holds the largest public video data sets as frames
    ARCHIVE_MAX_BYTES: (4 * 2**40, 1),
}

# (name, default as people read it, what it sets), for docs/settings.md and its test
SETTINGS: tuple[tuple[str, str, str], ...] = (
    (BANK_ROOT, "the bank installed with the package",
     "the skill bank to use: a folder laid out like the shipped one (skills/<kind>/<skill>/...)"),
    (STATE_DIR, DEFAULT_STATE_DIR, "the job store (jobs.db) and the runners `skillbank run` keeps"),
    (RESULTS_ROOT, DEFAULT_RESULTS_ROOT, "where jobs write results: a folder or an s3:// URI"),
    (ENCRYPTION_KEY, "none", "the model's encryption key; a secret, never written anywhere"),
    (CALLER_ENCRYPTION_KEY, "none",
     "the launching shell's own key when a run replaces it; a secret, masked like the key"),
    (MAX_YAML_NODES, str(_LIMITS[MAX_YAML_NODES][0]), "values a YAML document may expand to (aliases)"),
    (MAX_NESTING, str(_LIMITS[MAX_NESTING][0]), "mapping/list levels in an overrides or spec document"),
    (MAX_ECHO_CHARS, str(_LIMITS[MAX_ECHO_CHARS][0]), "characters of a value a message echoes"),
    (MAX_PROBLEMS, str(_LIMITS[MAX_PROBLEMS][0]), "problems one validation lists (the rest are counted)"),
    (ARCHIVE_MAX_RATIO, str(_LIMITS[ARCHIVE_MAX_RATIO][0]), "uncompressed/compressed size of an archive"),
    (ARCHIVE_MAX_BYTES, f"{_LIMITS[ARCHIVE_MAX_BYTES][0]} (4 TiB)", "bytes one archive may extract to"),
    (S3_MAX_ATTEMPTS, str(DEFAULT_S3_MAX_ATTEMPTS), "attempts of one S3 request (retries with backoff)"),
    (S3_CONNECT_TIMEOUT, f"{DEFAULT_S3_CONNECT_TIMEOUT:g}", "seconds to connect to S3"),
    (S3_READ_TIMEOUT, f"{DEFAULT_S3_READ_TIMEOUT:g}", "seconds to wait for an S3 answer"),
    (S3_ADDRESSING_STYLE, "path with a custom endpoint, else botocore's",
     "S3 addressing style: " + ", ".join(S3_ADDRESSING_STYLES)),
    (DOCKER_SHM_SIZE, DEFAULT_DOCKER_SHM_SIZE, "shared memory of a docker/podman job (data-loader workers need it)"),
    (SLURM_CONTAINER, "apptainer with an image, else none",
     "how a SLURM job runs when the container option is not given: none, apptainer, singularity or pyxis"),
    (K8S_NAMESPACE, "kubectl's current context", "the Kubernetes namespace of jobs (the namespace option wins)"),
    (RUNG_GATE, "none (not gated)",
     "set by `skillbank automl` on its local trial jobs only: the folder where the job waits at its rungs"),
)


# -- reading ---------------------------------------------------------------------------------------

def _text(name: str) -> str:
    """The value of ``$name`` without surrounding blanks ('' when unset)."""
    return os.environ.get(name, "").strip()


def env_number(name: str, default: float, *, minimum: float | None = None, integer: bool = False) -> float:
    """The number in ``$name`` (``default`` when unset or blank); a SettingError names the variable otherwise."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    kind = "a whole number" if integer else "a number"
    allowed = kind + (f" >= {minimum:g}" if minimum is not None else "")
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not {kind}; allowed: {allowed}") from None
    if value != value or value in (float("inf"), float("-inf")) or (minimum is not None and value < minimum):
        raise SettingError(f"{name}={raw!r} is out of range; allowed: {allowed}")
    return value


def limit(name: str) -> int:
    """The current value of the limit ``name`` (``MAX_YAML_NODES``, ``MAX_NESTING`` ... above)."""
    default, minimum = _LIMITS[name]
    return int(env_number(name, default, minimum=minimum, integer=True))


def bank_root() -> Path | None:
    """``$SKILLBANK_ROOT`` as a folder that holds ``skills/``; None when unset (the shipped bank is used)."""
    raw = _text(BANK_ROOT)
    if not raw:
        return None
    from pathlib import Path

    root = Path(raw).expanduser().resolve()
    allowed = "a folder laid out like the bank, with skills/<kind>/<skill>/references/skill_info.yaml"
    if not root.is_dir():
        raise SettingError(f"{BANK_ROOT}={raw!r} is not a folder; allowed: {allowed}")
    if not (root / "skills").is_dir():
        raise SettingError(f"{BANK_ROOT}={raw!r} has no skills/ folder; allowed: {allowed}")
    return root


def state_dir() -> Path:
    """Where the job store lives: ``$SKILLBANK_STATE_DIR``, else ``~/.local/state/skillbank``."""
    from pathlib import Path

    return Path(_text(STATE_DIR) or DEFAULT_STATE_DIR).expanduser()


def results_root() -> str:
    """Where jobs write results: ``$SKILLBANK_RESULTS_ROOT`` (a folder or an ``s3://`` URI), else
    ``~/skillbank-results``; a folder comes back with ``~`` expanded, a URI as it is."""
    from pathlib import Path

    root = _text(RESULTS_ROOT) or DEFAULT_RESULTS_ROOT
    return root if root.startswith("s3://") else str(Path(root).expanduser())


def encryption_key(env: dict[str, str] | None = None) -> str:
    """The model's encryption key: from ``env`` (a job's environment) first, else this process's; '' if none."""
    return (env or {}).get(ENCRYPTION_KEY) or os.environ.get(ENCRYPTION_KEY) or ""


def s3_max_attempts() -> int:
    return int(env_number(S3_MAX_ATTEMPTS, DEFAULT_S3_MAX_ATTEMPTS, minimum=1, integer=True))


def s3_connect_timeout() -> float:
    return env_number(S3_CONNECT_TIMEOUT, DEFAULT_S3_CONNECT_TIMEOUT, minimum=0.001)


def s3_read_timeout() -> float:
    return env_number(S3_READ_TIMEOUT, DEFAULT_S3_READ_TIMEOUT, minimum=0.001)


def s3_addressing_style(custom_endpoint: bool) -> str:
    """The S3 addressing style: ``$SKILLBANK_S3_ADDRESSING_STYLE``, else ``path`` with a custom endpoint
    (MinIO, Ceph, moto are reached that way), else '' (botocore decides)."""
    style = _text(S3_ADDRESSING_STYLE).lower()
    if style and style not in S3_ADDRESSING_STYLES:
        raise SettingError(f"{S3_ADDRESSING_STYLE}={os.environ[S3_ADDRESSING_STYLE]!r} is not an addressing "
                           f"style; allowed: {', '.join(S3_ADDRESSING_STYLES)}")
    return style or ("path" if custom_endpoint else "")


def docker_shm_size() -> str:
    return _text(DOCKER_SHM_SIZE) or DEFAULT_DOCKER_SHM_SIZE


def slurm_container() -> str:
    """``$SKILLBANK_SLURM_CONTAINER`` ('' when unset: the platform option or its default decides); a value the
    slurm platform cannot run is refused here, where the message can name the variable."""
    container = _text(SLURM_CONTAINER)
    if container and container not in SLURM_CONTAINERS:
        raise SettingError(f"{SLURM_CONTAINER}={os.environ[SLURM_CONTAINER]!r} is not a SLURM container runtime; "
                           f"allowed: {', '.join(SLURM_CONTAINERS)}")
    return container


def k8s_namespace() -> str:
    """``$SKILLBANK_K8S_NAMESPACE`` ('' when unset: kubectl's current context decides)."""
    return _text(K8S_NAMESPACE)


def rung_gate_folder() -> str:
    """``$SKILLBANK_RUNG_GATE``: the gate folder of an AutoML trial job (rung_gates.py); '' for any other job."""
    return _text(RUNG_GATE)
