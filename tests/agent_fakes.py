"""Helpers for the auto-stop agent's tests: run the agent, fake a Jupyter server, make times."""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

AGENT = Path(__file__).resolve().parents[1] / "src" / "sagesaver" / "agent" / "autostop.py"

# A fixed "now" for the agent (SAGESAVER_AGENT_NOW) so idle times are exact.
NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
ARN = "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/nb-1"

# Where the agent's AWS calls go unless a test points them at the simulator: a closed port.
NOWHERE_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def iso(moment: datetime, digits: int = 6, offset: str | None = None) -> str:
    """``moment`` the way Jupyter writes it: ``Z``, or an offset like ``+02:00``.

    ``digits`` is the number of fractional digits (0 for none, 9 like nanoseconds).
    """
    if offset is None:
        local, suffix = moment.astimezone(timezone.utc), "Z"
    else:
        sign = -1 if offset.startswith("-") else 1
        hours, minutes = offset[1:].split(":")
        zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        local, suffix = moment.astimezone(zone), offset
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + (f"{local.microsecond:06d}" + "0" * 9)[:digits]
    return text + suffix


def ago(seconds: float, now: datetime = NOW) -> datetime:
    """``seconds`` before ``now``."""
    return now - timedelta(seconds=seconds)


def kernel(
    kernel_id: str = "k-1",
    state: str | None = "idle",
    last_activity: str | None = None,
    connections: int = 0,
) -> dict[str, Any]:
    """A kernel model as ``/api/kernels`` lists it (``state=None`` leaves it out)."""
    model: dict[str, Any] = {
        "id": kernel_id,
        "name": "python3",
        "last_activity": last_activity if last_activity is not None else iso(ago(7200)),
        "connections": connections,
    }
    if state is not None:
        model["execution_state"] = state
    return model


def write_metadata(path: Path, name: str = "nb-1", arn: str = ARN) -> Path:
    """A SageMaker resource metadata file."""
    path.write_text(json.dumps({"ResourceArn": arn, "ResourceName": name}), encoding="utf-8")
    return path


def write_executable(path: Path, text: str) -> Path:
    """A script file with the executable bit."""
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


@dataclass
class Reply:
    """What the fake server answers for one path.

    ``truncate`` announces that many more bytes in Content-Length than it sends.
    """

    status: int = 200
    body: bytes = b"[]"
    truncate: int = 0

    @classmethod
    def json(cls, document: object, status: int = 200) -> Reply:
        """A JSON answer."""
        return cls(status, json.dumps(document).encode())


@dataclass
class Seen:
    """A request the fake server received."""

    path: str
    query: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeJupyter:
    """A Jupyter-like server on a loopback address (HTTP, or HTTPS with ``cert``)."""

    def __init__(self, host: str = "127.0.0.1", cert: tuple[Path, Path] | None = None) -> None:
        self.routes: dict[str, Reply] = {}
        self.seen: list[Seen] = []
        self.host = host
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                fake.seen.append(Seen(path, query, {k.lower(): v for k, v in self.headers.items()}))
                reply = fake.routes.get(path, Reply(404, b'{"message": "Not Found"}'))
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body) + reply.truncate))
                self.end_headers()
                self.wfile.write(reply.body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        family_server = type(
            "Server",
            (ThreadingHTTPServer,),
            {"address_family": _family(host), "daemon_threads": True},
        )
        self.server = family_server((host, 0), Handler)
        self.tls = cert is not None
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def jupyter(
        self,
        kernels: Sequence[Mapping[str, Any]] = (),
        sessions: Sequence[Mapping[str, Any]] = (),
        terminals: Sequence[Mapping[str, Any]] | None = (),
        started: str | None = None,
        last_activity: str | None = None,
    ) -> None:
        """Answer like a Jupyter server with these kernels, sessions and terminals.

        ``terminals=None`` answers 404 on ``/api/terminals`` (terminals disabled).
        """
        self.routes["/api/status"] = Reply.json(
            {
                "started": started if started is not None else iso(ago(86400)),
                "last_activity": last_activity if last_activity is not None else iso(NOW),
                "kernels": len(kernels),
                "connections": sum(int(k.get("connections", 0)) for k in kernels),
            }
        )
        self.routes["/api/kernels"] = Reply.json(list(kernels))
        self.routes["/api/sessions"] = Reply.json(list(sessions))
        if terminals is None:
            self.routes.pop("/api/terminals", None)
        else:
            self.routes["/api/terminals"] = Reply.json(list(terminals))

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def _family(host: str) -> int:
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET


def self_signed_cert(directory: Path, names: Iterable[str] = ("localhost",)) -> tuple[Path, Path]:
    """A self-signed certificate and key (PEM files) for these DNS names and IP addresses."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names = list(names)
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class AgentRun:
    """One run of the agent: exit code, stdout, stderr and the parsed JSON line."""

    code: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        """The JSON object the agent printed (exactly one line)."""
        lines = self.stdout.splitlines()
        assert len(lines) == 1, (self.stdout, self.stderr)
        document = json.loads(lines[0])
        assert isinstance(document, dict)
        assert set(document) == {"idle", "idle_seconds", "action", "reasons", "instance"}
        return document

    @property
    def reasons(self) -> str:
        """All reasons, one a line (for substring assertions)."""
        return "\n".join(self.result["reasons"])


class Agent:
    """Runs ``autostop.py`` as a subprocess, like cron does, in a scratch directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_file = directory / "state" / "autostop-state.json"
        self.home = directory / "home"
        self.metadata = write_metadata(directory / "resource-metadata.json")
        self.home.mkdir(exist_ok=True)

    def env(
        self, now: datetime | None = NOW, aws: Mapping[str, str] | None = None, **extra: str
    ) -> dict[str, str]:
        """The environment for a run: no real AWS, the fake home, a fixed ``now``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGESAVER_"))}
        env.pop("JUPYTER_TOKEN", None)
        env.update(NOWHERE_AWS if aws is None else aws)
        env["SAGESAVER_AGENT_HOME"] = str(self.home)
        env["SAGESAVER_AGENT_CPU_SAMPLE_SECONDS"] = "0"
        # The stop notice's line to the terminals goes to the scratch pts/, never to real ones.
        env["SAGESAVER_AGENT_DEV"] = str(self.directory / "dev")
        if now is not None:
            env["SAGESAVER_AGENT_NOW"] = iso(now)
        env.update(extra)
        return env

    def __call__(
        self,
        *args: str,
        url: str | None = None,
        time: float = 3600,
        cpu: float = 0,
        gpu: float = 0,
        env: Mapping[str, str] | None = None,
        python: Sequence[str] = (sys.executable,),
        defaults: bool = True,
    ) -> AgentRun:
        """Run the agent with the scratch state and metadata files and ``args``."""
        command = [*python, str(AGENT)]
        if defaults:
            command += [
                "--time",
                f"{time:g}",
                "--cpu-threshold",
                f"{cpu:g}",
                "--gpu-threshold",
                f"{gpu:g}",
                "--state-file",
                str(self.state_file),
                "--metadata-file",
                str(self.metadata),
            ]
            if url is not None:
                command += ["--url", url]
        command += list(args)
        process = subprocess.run(
            command,
            env=dict(env) if env is not None else self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return AgentRun(process.returncode, process.stdout, process.stderr)
