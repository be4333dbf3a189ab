"""S3 data I/O with boto3 (AWS or any S3-compatible store).

Endpoint, region and credentials come from the standard AWS environment and
config files: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` select an
S3-compatible store, ``AWS_DEFAULT_REGION`` / ``AWS_REGION`` the region,
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE`` the
credentials. Transient failures are retried (botocore "standard" mode,
``SKILLBANK_S3_MAX_ATTEMPTS`` attempts, default 5).

Every failure is an ``S3Error`` with a one-line message that names the URI and
never contains a credential value. boto3 is imported inside the functions so
that importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import posixpath
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.sdk.staged_folder import staged_folder

log = logging.getLogger(__name__)

TRANSFER_WORKERS = 8


class S3Error(SkillbankError, RuntimeError):
    """An S3 request that failed; the message is one line and free of secrets."""


# ---------------------------------------------------------------- URIs


def is_s3_uri(value: Any) -> bool:
    """True for a string that starts with ``s3://``."""
    return isinstance(value, str) and value.startswith("s3://")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")`` (the key may be empty)."""
    if not is_s3_uri(uri):
        raise S3Error(f"not an S3 URI: {uri!r} (expected s3://BUCKET/KEY)")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise S3Error(f"S3 URI has no bucket: {uri!r} (expected s3://BUCKET/KEY)")
    return bucket, key


def _folder_key(key: str) -> str:
    """A key prefix that names a folder: ``a/b`` -> ``a/b/`` (so ``a/b2/x`` is not matched)."""
    return key if not key or key.endswith("/") else key + "/"


# ---------------------------------------------------------------- client


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def client(max_attempts: int | None = None):
    """A boto3 S3 client from the standard AWS environment/config, with retries."""
    import boto3
    from botocore.config import Config

    from skillbank.runtime import settings

    endpoint = _endpoint()
    try:
        if max_attempts is None:
            max_attempts = settings.s3_max_attempts()
        connect_timeout = settings.s3_connect_timeout()
        read_timeout = settings.s3_read_timeout()
        style = settings.s3_addressing_style(custom_endpoint=bool(endpoint))
    except settings.SettingError as exc:
        raise S3Error(str(exc)) from None
    s3_options: dict[str, str] = {}
    if style:
        s3_options["addressing_style"] = style
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3=s3_options or None,
    )
    session = boto3.session.Session()
    region = session.region_name or os.environ.get("AWS_REGION") or "us-east-1"
    try:
        return session.client("s3", endpoint_url=endpoint, region_name=region, config=config)
    except ValueError as err:  # e.g. a malformed endpoint URL
        raise S3Error(f"cannot create an S3 client: {_scrub(str(err))}") from None


def uses_s3(value: Any) -> bool:
    """Whether ``value`` (a spec, overrides, a list of them) holds an ``s3://`` URI anywhere."""
    if isinstance(value, dict):
        return any(uses_s3(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(uses_s3(v) for v in value)
    return is_s3_uri(value)


def connection_settings() -> dict[str, Any]:
    """Where S3 requests would go and how they are signed, never a credential value (``--dry-run`` shows it).

    ``endpoint`` is the client's real URL (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else a profile's
    ``endpoint_url``, else AWS), ``credentials`` names where boto3's chain found them (``env``,
    ``shared-credentials-file``, ``assume-role``, ``iam-role`` ...). Nothing is sent to the store.
    """
    import boto3

    s3 = client(max_attempts=1)
    endpoint_from = next((n for n in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") if os.environ.get(n)), None)
    try:
        found = boto3.session.Session().get_credentials()
    except Exception as err:  # noqa: BLE001 - a broken profile is reported, not raised, in a preview
        method = f"error: {_scrub(str(err))}"
    else:
        method = found.method if found is not None else "none found"
    return {
        "endpoint": s3.meta.endpoint_url,
        "endpoint_from": endpoint_from or ("AWS (default)" if "amazonaws.com" in s3.meta.endpoint_url
                                           else "AWS config file"),
        "region": s3.meta.region_name,
        "addressing_style": (s3.meta.config.s3 or {}).get("addressing_style", "auto"),
        "credentials": method,
        "profile": os.environ.get("AWS_PROFILE") or None,
    }


def describe_connection(settings: dict[str, Any]) -> str:
    """One line from :func:`connection_settings`."""
    profile = f", profile {settings['profile']}" if settings.get("profile") else ""
    return (f"S3 endpoint {settings['endpoint']} (from {settings['endpoint_from']}), region {settings['region']}, "
            f"{settings['addressing_style']}-style addressing, credentials: {settings['credentials']}{profile}")


# ---------------------------------------------------------------- errors


def _scrub(text: str) -> str:
    """Remove any credential value that a server or library might echo back (the SDK's one masking rule)."""
    from skillbank.runtime.sdk.secrets import redact_text

    return " ".join(redact_text(text).split())  # one line


def _bucket_exists(s3, bucket: str) -> bool | None:
    """True/False when the store says so, None when it cannot tell (e.g. access denied)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        return False if code in ("404", "NoSuchBucket", "NotFound") else None
    except BotoCoreError:
        return None


def _message(err: Exception, uri: str, action: str, s3=None) -> str:
    """One line that says what failed, on which URI, and what to do."""
    from botocore import exceptions as bx

    if isinstance(err, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return (f"no AWS credentials found to {action} {uri}: set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
    if isinstance(err, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionClosedError,
                        bx.ReadTimeoutError)):
        where = _endpoint() or "the AWS S3 endpoint"
        return f"cannot reach S3 endpoint {where} to {action} {uri}; check AWS_ENDPOINT_URL and the network"
    if isinstance(err, bx.ClientError):
        info = err.response.get("Error", {})
        code = str(info.get("Code", ""))
        bucket, _ = parse_s3_uri(uri)
        if code == "NoSuchBucket":
            return f"S3 bucket {bucket!r} not found (while trying to {action} {uri})"
        if code in ("404", "NoSuchKey", "NotFound"):
            if s3 is not None and _bucket_exists(s3, bucket) is False:
                return f"S3 bucket {bucket!r} not found (while trying to {action} {uri})"
            return f"S3 object not found: {uri}"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
            return f"S3 rejected the credentials ({code}) when trying to {action} {uri}; check AWS_* settings"
        if code in ("403", "AccessDenied", "AllAccessDisabled", "Forbidden"):
            return f"access denied to {uri} (trying to {action}); check the credentials' permissions"
        detail = _scrub(str(info.get("Message", "")))
        return f"S3 request to {action} {uri} failed: {code or 'error'}{': ' + detail if detail else ''}"
    if isinstance(err, bx.BotoCoreError):
        return f"S3 request to {action} {uri} failed: {_scrub(str(err))}"
    return f"cannot {action} {uri}: {_scrub(str(err))}"


@contextlib.contextmanager
def _translated(uri: str, action: str, s3=None) -> Iterator[None]:
    """Turn boto errors into one-line S3Errors (the chain is dropped so no secret is printed)."""
    from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except S3Error:
        raise
    except (BotoCoreError, ClientError) as err:
        raise S3Error(_message(err, uri, action, s3)) from None
    except (S3UploadFailedError, S3TransferFailedError) as err:
        cause = err.__cause__ or err.__context__
        if isinstance(cause, (BotoCoreError, ClientError)):
            raise S3Error(_message(cause, uri, action, s3)) from None
        raise S3Error(f"S3 transfer to {action} {uri} failed: {_scrub(str(err))}") from None


# ---------------------------------------------------------------- listing


def _iter_keys(s3, bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def list_objects(uri: str) -> list[str]:
    """Full ``s3://`` URIs of every object under the folder ``uri`` (sorted; empty when none)."""
    bucket, key = parse_s3_uri(uri)
    prefix = _folder_key(key)
    s3 = client()
    with _translated(uri, "list", s3):
        return sorted(f"s3://{bucket}/{k}" for k in _iter_keys(s3, bucket, prefix))


# ---------------------------------------------------------------- download


def _safe_relative(key: str, prefix: str, uri: str) -> str:
    """The key's path under the prefix, refused when it would leave the target folder."""
    rel = key[len(prefix):]
    norm = posixpath.normpath(rel) if rel else rel
    if not rel or rel.startswith("/") or norm == ".." or norm.startswith("../"):
        raise S3Error(f"refusing S3 object {key!r} under {uri}: its name would leave the download folder")
    return norm


def download_file(uri: str, dest: Path | str) -> Path:
    """Download one object; ``dest`` is a file path, or an existing folder (the key's name is kept)."""
    bucket, key = parse_s3_uri(uri)
    if not key or key.endswith("/"):
        raise S3Error(f"S3 URI names a folder, not an object: {uri}")
    into_folder = str(dest).endswith(("/", os.sep))
    dest = Path(dest)
    if into_folder or dest.is_dir():
        dest = dest / posixpath.basename(key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3 = client()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        with _translated(uri, "download", s3):
            s3.download_file(bucket, key, tmp_name)
        os.replace(tmp_name, dest)  # never a half-written file under the real name
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    log.info("downloaded %s -> %s", uri, dest)
    return dest


def download_prefix(uri: str, dest: Path | str) -> Path:
    """Download every object under the folder ``uri`` into ``dest`` (replaced as a whole).

    Objects land in a temporary folder beside ``dest`` that is renamed into
    place only when all of them arrived.
    """
    bucket, key = parse_s3_uri(uri)
    prefix = _folder_key(key)
    dest = Path(dest)
    s3 = client()
    with _translated(uri, "list", s3):
        keys = [k for k in _iter_keys(s3, bucket, prefix) if not k.endswith("/")]
        if not keys:
            if _bucket_exists(s3, bucket) is False:
                raise S3Error(f"S3 bucket {bucket!r} not found (while trying to download {uri})")
            raise S3Error(f"no S3 objects under {uri}")
    plan = [(k, _safe_relative(k, prefix, uri)) for k in keys]
    with staged_folder(dest, "download") as staging:

        def fetch(item: tuple[str, str]) -> None:
            k, rel = item
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with _translated(f"s3://{bucket}/{k}", "download", s3):
                s3.download_file(bucket, k, str(target))

        log.info("downloading %d objects from %s", len(plan), uri)
        with ThreadPoolExecutor(max_workers=min(TRANSFER_WORKERS, len(plan))) as pool:
            for done, _ in enumerate(pool.map(fetch, plan), start=1):
                if done % 500 == 0:
                    log.info("  %d/%d objects", done, len(plan))
    log.info("downloaded %s -> %s (%d objects)", uri, dest, len(plan))
    return dest


# ---------------------------------------------------------------- upload


def check_writable(uri: str) -> None:
    """Write and delete one empty object under the folder ``uri``: a missing bucket or a denied write
    shows before a job runs, not when its results are uploaded."""
    bucket, key = parse_s3_uri(uri)
    probe = _folder_key(key) + ".skillbank-write-check"
    s3 = client()
    with _translated(uri, "write to", s3):
        s3.put_object(Bucket=bucket, Key=probe, Body=b"")
        s3.delete_object(Bucket=bucket, Key=probe)


def upload_file(path: Path | str, uri: str) -> str:
    """Upload one file; a URI ending in ``/`` keeps the file's name. Returns the object's URI."""
    path = Path(path)
    if not path.is_file():
        raise S3Error(f"cannot upload {path}: not a file")
    if uri.endswith("/"):
        uri = uri + path.name
    bucket, key = parse_s3_uri(uri)
    if not key:
        raise S3Error(f"S3 URI has no key to upload to: {uri}")
    s3 = client()
    with _translated(uri, "upload to", s3):
        s3.upload_file(str(path), bucket, key)
    log.info("uploaded %s -> %s", path, uri)
    return uri


def is_excluded(relpath: str, excludes: Iterable[str]) -> bool:
    """True when a POSIX relative path matches an exclude.

    ``inputs/`` (ends with a slash) excludes that folder at the top;
    ``inputs`` excludes the file or folder of that name at the top; patterns
    with glob characters match the whole path (``lightning_logs/*``) or, when
    they hold no slash, the file name anywhere (``*.tmp``).
    """
    for pattern in excludes:
        pattern = pattern.strip()
        if not pattern:
            continue
        if any(ch in pattern for ch in "*?["):
            if fnmatch.fnmatchcase(relpath, pattern):
                return True
            if "/" not in pattern and fnmatch.fnmatchcase(posixpath.basename(relpath), pattern):
                return True
            continue
        folder = pattern.strip("/")
        if relpath == folder or relpath.startswith(folder + "/"):
            return True
    return False


def _files_to_upload(local_dir: Path, excludes: Iterable[str]) -> list[tuple[Path, str]]:
    excludes = list(excludes)
    real_root = os.path.realpath(local_dir)
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(local_dir):
        rel_dir = os.path.relpath(dirpath, local_dir)
        rel_dir = "" if rel_dir == "." else Path(rel_dir).as_posix() + "/"
        dirnames[:] = sorted(d for d in dirnames if not is_excluded(rel_dir + d, excludes))
        for name in sorted(filenames):
            rel = rel_dir + name
            path = Path(dirpath) / name
            if is_excluded(rel, excludes):
                continue
            if path.is_symlink():
                real = os.path.realpath(path)
                # A link out of the results folder must not upload an arbitrary file of this machine.
                if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
                    log.warning("not uploading %s: it links outside %s", rel, local_dir)
                    continue
            if path.is_file():
                out.append((path, rel))
    return out


def upload_dir(local_dir: Path | str, uri: str, excludes: Iterable[str] = ()) -> list[str]:
    """Upload a folder's files under the folder ``uri``, minus ``excludes``; returns the URIs written."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise S3Error(f"cannot upload {local_dir}: not a folder")
    bucket, key = parse_s3_uri(uri)
    prefix = _folder_key(key)
    files = _files_to_upload(local_dir, excludes)
    if not files:
        return []
    s3 = client()

    def send(item: tuple[Path, str]) -> str:
        path, rel = item
        target = f"s3://{bucket}/{prefix}{rel}"
        with _translated(target, "upload to", s3):
            s3.upload_file(str(path), bucket, prefix + rel)
        return target

    log.info("uploading %d files from %s to %s", len(files), local_dir, uri)
    with ThreadPoolExecutor(max_workers=min(TRANSFER_WORKERS, len(files))) as pool:
        uploaded = list(pool.map(send, files))
    return uploaded
