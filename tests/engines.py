"""Real engines for tests, each started on loopback by its fixture and stopped after the session.

* ``slurm_cluster``: a single-node SLURM (munged + slurmctld + slurmd, no accounting database) whose
  ``SLURM_CONF`` the whole session sees, so sbatch/squeue/scontrol/scancel and the jobs' srun reach it;
* ``postgres_url``: a throwaway PostgreSQL cluster and database, as an Optuna storage URL;
* ``podman_engine``: podman with private storage and a ``podman`` wrapper first on PATH that adds the
  storage flags; images are built offline (``podman import``), since no registry is reachable.

An engine that is not installed skips its tests with the reason; with ``CI=true`` it fails them
instead, so CI cannot pass without running them (``.ci/run`` installs the Debian packages).
Listed in conftest's ``pytest_plugins``.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def engine_missing(reason: str) -> None:
    """Skip (on a developer's machine) or fail (in CI) a test whose engine cannot run here."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}: .ci/run installs the engines; fix that, do not skip", pytrace=False)
    pytest.skip(reason)


def require_tools(engine: str, tools: list[str]) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        engine_missing(f"{engine} is not installed (missing {', '.join(missing)}; "
                       f"apt-get install slurm-wlm munge postgresql podman runc)")
    if os.geteuid() != 0:
        engine_missing(f"{engine} test fixtures start daemons as root; run as root (as CI does)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.2):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what} not ready after {timeout:.0f}s", pytrace=False)


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """TERM, wait, then KILL one process this fixture started."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------------------------------ SLURM
SLURM_TOOLS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "srun"]


@dataclass
class SlurmCluster:
    folder: Path
    conf: Path
    partition: str = "debug"

    def log_tail(self) -> str:
        """The daemons' last log lines, for a failing test's message."""
        lines = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.folder / "log" / name
            if path.is_file():
                lines += [f"{name}: {line}" for line in path.read_text(errors="replace").splitlines()[-8:]]
        return "\n".join(lines)


def _slurm_conf(folder: Path, ctld_port: int, slurmd_port: int) -> str:
    cpus = os.cpu_count() or 2
    return f"""\
ClusterName=skillbanktest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge/munge.sock
CredType=cred/munge
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/run/slurmctld.pid
SlurmdPidFile={folder}/run/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} Boards=1 SocketsPerBoard=1 CoresPerSocket={cpus} \
ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running single-node SLURM; ``SLURM_CONF`` is set for the session (and so for its jobs)."""
    require_tools("SLURM", SLURM_TOOLS)
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("munge", "state", "spool", "log", "run"):
        (folder / sub).mkdir()
    (folder / "munge").chmod(0o700)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(_slurm_conf(folder, free_port(), free_port()))
    subprocess.run(["munged", "--force", f"--socket={folder}/munge/munge.sock", f"--key-file={key}",
                    f"--pid-file={folder}/run/munged.pid", f"--seed-file={folder}/munge/munged.seed",
                    f"--log-file={folder}/log/munged.log"], check=True, capture_output=True)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons: list[subprocess.Popen] = []
    cluster = SlurmCluster(folder, conf)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(conf))
        try:
            # foreground mode (-D) in the background: we own the pids (daemon mode may write no pid file)
            for argv, log in ((["slurmctld", "-D", "-c"], "slurmctld.out"),
                              (["slurmd", "-D", "-N", "localhost"], "slurmd.out")):
                with open(folder / "log" / log, "ab") as out:
                    daemons.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, start_new_session=True))

            def node_idle() -> bool:
                if daemons[0].poll() is not None:
                    pytest.fail(f"slurmctld exited:\n{cluster.log_tail()}", pytrace=False)
                done = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True,
                                      timeout=10)
                return done.stdout.strip().startswith("idle")

            wait_until(node_idle, 60, f"SLURM node\n{cluster.log_tail()}")
            yield cluster
        finally:
            with contextlib.suppress(Exception):
                subprocess.run(["scancel", "--full", "--user=root"], env=env, capture_output=True, timeout=10)
            for proc in reversed(daemons):
                stop_process(proc)
            subprocess.run(["munged", "--stop", f"--socket={folder}/munge/munge.sock"], capture_output=True)


# ------------------------------------------------------------------------------------------ PostgreSQL
def _postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql://postgres@127.0.0.1:PORT/optuna_test`` on a fresh cluster (trust auth, loopback only)."""
    bindir = _postgres_bindir()
    if bindir is None:
        engine_missing("PostgreSQL is not installed (no initdb; apt-get install postgresql)")
    require_tools("PostgreSQL", [str(bindir / "pg_ctl")])
    # The server runs as the postgres user: its folder must not sit under root's private pytest folder.
    folder = Path(tempfile.mkdtemp(prefix="skillbank-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        shutil.chown(folder, "postgres", "postgres")
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", f"{folder}/data", "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", f"{folder}/data", "-l", f"{folder}/server.log",
                        "-w", "-t", "60", "-o", options, "start"], check=True, capture_output=True)
        subprocess.run([*as_postgres, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "optuna_test"],
                       check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna_test"
    except subprocess.CalledProcessError as exc:
        log = folder / "server.log"
        pytest.fail(f"PostgreSQL did not start: {exc.stderr!r}\n"
                    f"{log.read_text(errors='replace')[-2000:] if log.is_file() else ''}", pytrace=False)
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", f"{folder}/data", "-m", "immediate", "-w",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------ podman
PODMAN_TOOLS = ["podman", "runc"]
# conmon may not raise its limits here (no CAP_SYS_RESOURCE): containers get lower ones; no systemd: cgroupfs.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
# The storage folders go on the command line: CONTAINERS_STORAGE_CONF makes every run stall in cleanup.
PODMAN_WRAPPER = """#!/bin/sh
exec {podman} --root {folder}/root --runroot {folder}/run --tmpdir {folder}/tmp "$@"
"""


@dataclass
class Podman:
    folder: Path
    bin: Path  # holds the `podman` wrapper; first on PATH while the fixture runs
    image: str  # an image whose /usr is the host's (mounted read-only) and whose PATH has this venv

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "podman"), *args], capture_output=True, text=True, check=check,
                              timeout=timeout)


def _import_image(podman: Podman, name: str, changes: list[str]) -> None:
    """A merged-/usr skeleton (bin, lib ... link into usr/) imported as ``name``: the host's /usr is mounted."""
    root = Path(tempfile.mkdtemp(prefix="skillbank-rootfs-"))
    try:
        for sub in ("usr", "tmp", "etc", "proc", "sys", "dev", "root"):
            (root / sub).mkdir()
        for link in ("bin", "lib", "lib64", "sbin"):
            (root / link).symlink_to(f"usr/{link}")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")
        (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
        argv = [str(podman.bin / "podman"), "import"]
        for change in changes:
            argv += ["--change", change]
        subprocess.run([*argv, "-", name], input=tar, capture_output=True, check=True, timeout=120)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def podman_engine(tmp_path_factory):
    """podman ready to run containers offline; its wrapper is first on PATH for the session."""
    require_tools("podman", PODMAN_TOOLS)
    folder = tmp_path_factory.mktemp("podman")
    for sub in ("root", "run", "tmp", "bin"):
        (folder / sub).mkdir()
    (folder / "containers.conf").write_text(CONTAINERS_CONF)
    wrapper = folder / "bin" / "podman"
    wrapper.write_text(PODMAN_WRAPPER.format(podman=shutil.which("podman"), folder=folder))
    wrapper.chmod(0o755)
    venv_bin = Path(sys.executable).parent
    podman = Podman(folder, folder / "bin", "localhost/skillbank-hostusr:test")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", str(folder / "containers.conf"))
        patch.setenv("PATH", f"{podman.bin}{os.pathsep}{os.environ['PATH']}")
        try:
            _import_image(podman, podman.image, [f"ENV PATH={venv_bin}:/usr/local/bin:/usr/bin:/bin",
                                                 "ENV HOME=/root", 'CMD ["/bin/sh"]'])
            probe = podman.run("run", "--rm", "--network", "none", "-v", "/usr:/usr:ro", podman.image,
                               "python3", "-c", "print('python-in-container-ok')", check=False)
            if probe.returncode != 0 or "python-in-container-ok" not in probe.stdout:
                pytest.fail(f"podman cannot run a container here: {probe.stderr.strip()[-800:]}", pytrace=False)
            yield podman
        finally:
            with contextlib.suppress(Exception):
                podman.run("rm", "--all", "--force", "--time", "0", check=False, timeout=60)
            with contextlib.suppress(Exception):
                podman.run("system", "reset", "--force", check=False, timeout=120)
