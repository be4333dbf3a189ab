"""A moto S3 server on 127.0.0.1 for tests, spoken to by real boto3 over HTTP.

A plugin of conftest.py: a test takes the ``moto_s3`` fixture as an argument. One server runs per test
session; every test that asks for ``moto_s3`` gets an empty store and its own
AWS environment (endpoint, fake credentials, region), which child processes
inherit.
"""
from __future__ import annotations

import urllib.request
from dataclasses import dataclass

import pytest

FAKE_ACCESS_KEY_ID = "AKIDSKILLBANKTEST0001"
FAKE_SECRET_ACCESS_KEY = "skillbank-test-secret-Zx9Qw7Lp3Rt5"  # grep-able in secret-leak tests
REGION = "us-east-1"


@dataclass
class MotoS3:
    """The running server: where it listens and the credentials the environment holds."""

    endpoint: str
    region: str = REGION
    access_key_id: str = FAKE_ACCESS_KEY_ID
    secret_access_key: str = FAKE_SECRET_ACCESS_KEY

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
        )

    def create_bucket(self, name: str = "skillbank-test") -> str:
        """Create a bucket and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


_SERVER: dict[str, str] = {}  # the one server of this test session: {"endpoint": ...}


def _endpoint(config: pytest.Config) -> str:
    """Start the session's server on first use; it is stopped when pytest finishes."""
    if "endpoint" not in _SERVER:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        _SERVER["endpoint"] = f"http://{host}:{port}"
        config.add_cleanup(server.stop)
        config.add_cleanup(_SERVER.clear)
    return _SERVER["endpoint"]


@pytest.fixture
def moto_s3(request, monkeypatch, tmp_path) -> MotoS3:
    """An empty moto S3 store with the AWS environment pointing at it."""
    endpoint = _endpoint(request.config)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    # Never read the user's ~/.aws files or ask EC2 instance metadata (slow when absent).
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SKILLBANK_S3_MAX_ATTEMPTS", "2")
    store = MotoS3(endpoint=endpoint)
    store.reset()
    yield store
    store.reset()
