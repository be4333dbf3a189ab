"""Kubernetes platform: a batch/v1 Job per job, submitted with the real ``kubectl``.

The Job mounts the results folder (and the request's mounts) by hostPath at
the same paths, or, with the ``pvc`` option, one PersistentVolumeClaim at
``pvc_mount`` (default: the results root) under which every path of the job
must lie. It takes its environment from a Secret created at submit time
through kubectl's stdin (never argv, never a file), owned by the Job so that
Kubernetes deletes it with the Job. The namespace is the ``namespace``
option, ``SKILLBANK_K8S_NAMESPACE``, or kubectl's current context; ``image``
and ``gpus`` (0: no GPU limit) override the request's.
"""
from __future__ import annotations

import json
import posixpath
from pathlib import Path

from skillbank.runtime import settings
from skillbank.runtime.sdk.platforms.base import (
    CANCELED,
    COMPLETE,
    ERROR,
    PENDING,
    RUNNING,
    LaunchRequest,
    PlatformError,
    PlatformStatus,
)
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

MANAGED_BY = {"app.kubernetes.io/managed-by": "skillbank"}


class KubernetesPlatform(SubmittingPlatform):
    name = "kubernetes"
    submit_tool = "kubectl"

    def __init__(self, namespace: str | None = None, *, image: str = "", gpus: int | None = None, pvc: str = "",
                 pvc_mount: str = ""):
        self.namespace = namespace or settings.k8s_namespace()
        self.image = image
        self.gpus = gpus  # None: the request's (gpu_spec_key); 0: no GPU limit
        self.pvc = pvc
        self.pvc_mount = pvc_mount

    @staticmethod
    def job_name(job_id: str) -> str:
        return safe_name(f"skillbank-{job_id}")

    @staticmethod
    def secret_name(job_id: str) -> str:
        return safe_name(f"skillbank-{job_id}-env", limit=253)

    def _kubectl(self, *args: str) -> list[str]:
        return ["kubectl", *(["-n", self.namespace] if self.namespace else []), *args]

    # -- render / launch ----------------------------------------------------------------------
    def render(self, request: LaunchRequest) -> str:
        check_command(request)
        image = self.image or request.image
        if not image:
            raise PlatformError("the kubernetes platform needs a container image (skill_info container_image, "
                                "or --platform-option image=...)")
        results = results_path(request)
        pairs = mounts(request)
        claim_mount = ""
        if self.pvc:
            claim_mount = posixpath.normpath(self.pvc_mount or posixpath.dirname(results))
            outside = [target for _, target in pairs if not _under(target, claim_mount)]
            if outside:
                raise PlatformError(f"with pvc={self.pvc}, every path of the job must lie under pvc_mount="
                                    f"{claim_mount}; {outside[0]} does not (put it on the claim, or use s3://)")
        return render_template(
            "k8s_job.yaml.j2", job_id=request.job_id, name=request.name or request.job_id,
            job_name=self.job_name(request.job_id), namespace=self.namespace, image=image,
            command=list(request.command), results_dir=results, env_names=env_names(request),
            secret_name=self.secret_name(request.job_id),
            gpus=int(request.gpus if self.gpus is None else self.gpus), mounts=pairs, pvc=self.pvc,
            pvc_mount=claim_mount,
        )

    def _secret_manifest(self, request: LaunchRequest, job_name: str, job_uid: str) -> str:
        """The Secret with the job's environment; only ever sent on kubectl's stdin."""
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": job_uid,
                 "blockOwnerDeletion": False}
        manifest = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": self.secret_name(request.job_id),
                         "labels": {**MANAGED_BY, "skillbank/job-id": request.job_id},
                         "ownerReferences": [owner]},
            "stringData": dict(request.env),
        }
        return json.dumps(manifest)

    def _submit(self, request: LaunchRequest, text: str) -> str:
        done = run_tool(self._kubectl("create", "-f", "-", "-o", "name"), stdin=text, what="kubectl create job")
        created = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        name = created.rsplit("/", 1)[-1]
        if name != self.job_name(request.job_id):
            raise PlatformError(f"kubectl create printed no job name: {one_line(done.stdout + done.stderr)}")
        if request.env:
            try:
                uid = run_tool(self._kubectl("get", "job", name, "-o", "jsonpath={.metadata.uid}"),
                               what="kubectl get job").stdout.strip()
                # The pod waits (CreateContainerConfigError, retried by the kubelet) until this exists.
                # `create`, not `apply`: apply would copy the values into a last-applied annotation.
                run_tool(self._kubectl("create", "-f", "-"), stdin=self._secret_manifest(request, name, uid),
                         env=submit_environment(request), what="kubectl create secret")
            except PlatformError:
                run_tool(self._kubectl("delete", "job", name, "--ignore-not-found", "--wait=false"), check=False)
                raise
        return name

    # -- status -------------------------------------------------------------------------------
    def status(self, backend_id: str, results_dir: Path) -> PlatformStatus:
        done = run_tool(self._kubectl("get", "job", backend_id, "-o", "json"), check=False, what="kubectl get job")
        if done.returncode != 0:
            if "notfound" in done.stderr.replace(" ", "").lower():
                if was_canceled(results_dir):
                    return PlatformStatus(CANCELED, detail="canceled; the job was deleted")
                return PlatformStatus(ERROR, detail=f"Kubernetes job {backend_id} no longer exists")
            raise PlatformError(f"kubectl get job failed (exit {done.returncode}): {one_line(done.stderr)}")
        try:
            job = json.loads(done.stdout)
        except ValueError:
            raise PlatformError(f"kubectl get job gave no JSON: {one_line(done.stdout)}") from None
        status = job.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
        if "Complete" in conditions or status.get("succeeded"):
            return PlatformStatus(COMPLETE, exit_code=0)
        if "Failed" in conditions or status.get("failed"):
            code, signal, reason = self._pod_exit(backend_id)
            if was_canceled(results_dir):
                return PlatformStatus(CANCELED, exit_code=code, signal=signal, detail="canceled")
            cond = conditions.get("Failed", {})
            detail = reason or ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x) or "failed"
            return PlatformStatus(ERROR, exit_code=code, signal=signal, detail=detail)
        if status.get("active"):
            if "ready" in status and not status.get("ready"):
                return PlatformStatus(PENDING, detail="pod not ready yet")
            return PlatformStatus(RUNNING, detail=f"{status['active']} pod(s) active")
        if was_canceled(results_dir):
            return PlatformStatus(CANCELED, detail="canceled")
        return PlatformStatus(PENDING, detail="job created")

    def _pod_exit(self, job_name: str) -> tuple[int | None, int | None, str]:
        """Exit code, signal and reason of the job's terminated container (best effort)."""
        done = run_tool(self._kubectl("get", "pods", "-l", f"job-name={job_name}", "-o", "json"), check=False)
        if done.returncode != 0:
            return None, None, ""
        try:
            pods = json.loads(done.stdout).get("items") or []
        except ValueError:
            return None, None, ""
        for pod in pods:
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
                if term:
                    code = term.get("exitCode")
                    reason = term.get("reason") or ""
                    if reason == "OOMKilled":
                        reason = "out of memory (OOMKilled)"
                    sig = term.get("signal") or (code - 128 if isinstance(code, int) and code > 128 else None)
                    return code, sig, reason
        return None, None, ""

    # -- logs / cancel ------------------------------------------------------------------------
    def logs(self, backend_id: str, results_dir: Path, tail: int | None = None) -> str:
        args = ["logs", f"job/{backend_id}"] + ([f"--tail={tail}"] if tail is not None else [])
        done = run_tool(self._kubectl(*args), check=False, what="kubectl logs")
        if done.returncode == 0:
            return tail_text(done.stdout, tail)
        return read_log(results_dir, tail) or ""

    def _stop(self, backend_id: str, results_dir: Path) -> None:
        # Background propagation removes the pods; the Secret goes with its owner, the Job.
        run_tool(self._kubectl("delete", "job", backend_id, "--ignore-not-found", "--wait=false"),
                 what="kubectl delete job")


def _under(path: str, folder: str) -> bool:
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    return folder == "/" or path == folder or path.startswith(folder + "/")
