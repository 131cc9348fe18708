"""SageSaver auto-stop agent: stops this SageMaker notebook instance once it has been idle.

It runs on the notebook instance, from cron every 5 minutes, as
``python3 autostop.py --time 3600 [options]``. It is one file, uses only the standard library and
runs on Python 3.7 or newer, so a lifecycle configuration can inline it (no download, works in a
VPC without internet) and it does not depend on what the host's Python has installed (boto3 is
optional, see "Stopping").

Idle
----
The instance is idle when, for at least ``--time`` seconds, all of these held:

* Kernels (``/api/kernels`` and the kernels of ``/api/sessions``): none was busy, every kernel's
  (and session's) ``last_activity`` is older, and, unless ``--ignore-connections``, no kernel had
  an open connection (a browser tab). A kernel that is ``starting``, ``restarting`` or ``dead``
  counts by its ``last_activity``, so one stuck in ``starting`` for longer than ``--time`` does not
  block stopping. A kernel in an execution state this agent does not know (or with none) counts
  as busy: unknown means "maybe working", and stopping mid-work is worse than staying up. Sessions
  whose kernel is null are skipped.
* Terminals (``/api/terminals``): every ``last_activity`` is older. (A 404 there means the server
  has no terminals.)
* CPU: the CPU use of the whole machine, from the ``/proc/stat`` counters averaged since the
  previous run (the counters are kept in the state file), stayed under ``--cpu-threshold`` percent,
  so a ``nohup python train.py &`` keeps the instance up. Busy time is user + nice + system + irq +
  softirq + steal; idle and iowait are not busy. With no usable previous sample (first run, state
  lost, reboot) the agent takes a 1-second sample.
* GPU: when ``nvidia-smi`` is on PATH, the utilisation of every GPU, sampled at each run, stayed
  under ``--gpu-threshold`` percent.
* No keep-alive file holds the instance (see below).

CPU or GPU use at or above its threshold counts as activity "now". The agent remembers in its
state file the latest activity it has seen; idle time runs from the latest of that, the Jupyter
server's start (``started`` of ``/api/status``) and every kernel, session and terminal activity.
The ``last_activity`` of ``/api/status`` is not used: API polling (a browser tab left open, or this
agent) moves it. The agent's own requests carry ``no_track_activity=1``. All times are aware UTC
datetimes, so the host's time zone does not matter. Jupyter times are parsed with or without
fractional seconds (any number of digits) and with ``Z`` or an offset.

Keep-alive
----------
``~/SageMaker/.sagesaver-keep-alive`` (checked for the current user and for ``/home/ec2-user``)
or ``keep-alive`` beside the state file holds the instance up until the time it contains: an ISO
8601 time (``2030-06-01T18:00:00Z``, ``2030-06-01 20:00+02:00``, a time without offset is UTC) or
Unix epoch seconds, e.g. ``date -d '+3 hours' +%s > ~/SageMaker/.sagesaver-keep-alive``. A time in
the past is ignored. A file that cannot be read or does not hold a time (an empty one too) keeps
the instance up, and the reasons say so.

Stopping
--------
When idle, and not ``--dry-run``, the agent reads ``ResourceName`` and the region (from
``ResourceArn``) in the metadata file, checks with ``DescribeNotebookInstance`` that the instance
is ``InService`` and calls ``StopNotebookInstance`` once, without retries (the next cron run is the
retry). boto3 is imported only then; when it is missing or broken, the ``aws`` command line is
used instead. ``AWS_ENDPOINT_URL_SAGEMAKER`` or ``AWS_ENDPOINT_URL`` is honoured in both cases, as
boto3 does (unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``). The instance role needs exactly
the IAM actions in ``REQUIRED_IAM_ACTIONS``.

Options
-------
--time SECONDS          idle time after which the instance is stopped (required, > 0)
--url URL               Jupyter server (default https://localhost:8443). A self-signed TLS
                        certificate is accepted only for localhost, 127.0.0.1 and ::1; any other
                        host's certificate is verified.
--token TOKEN           Jupyter token, sent as ``Authorization: token ...`` (default: the
                        ``JUPYTER_TOKEN`` environment variable, which keeps it out of ``ps``)
--ignore-connections    open kernel connections (browser tabs) do not count as activity
--cpu-threshold PERCENT CPU use that counts as activity (default 10; 0 disables the CPU check)
--gpu-threshold PERCENT GPU use that counts as activity (default 10; 0 disables the GPU check)
--state-file PATH       where the agent keeps what it has seen (default
                        /var/lib/sagesaver/autostop-state.json, or
                        $XDG_STATE_HOME/sagesaver/autostop-state.json, by default
                        ~/.local/state/..., when that directory cannot be written)
--metadata-file PATH    SageMaker's resource metadata (default
                        /opt/ml/metadata/resource-metadata.json)
--dry-run               report "would-stop" instead of stopping

Output and exit codes
---------------------
stdout gets exactly one JSON object on one line::

    {"idle": bool, "idle_seconds": number, "action": "none" | "would-stop" | "stop",
     "reasons": [str, ...], "instance": str | null}

stderr gets diagnostics, one line each, starting with a UTC timestamp. The token is never
printed. Exit codes:

0  the agent decided: idle or not; stopped, would stop, or nothing to do (e.g. already stopped).
1  something failed: Jupyter unreachable or answering nonsense (HTTP error, malformed or truncated
   JSON, wrong shapes), CPU or GPU use unreadable, metadata file missing or invalid, state file
   not writable, describe or stop call failed or denied. After a failed check the instance is
   never stopped.
2  bad options (argparse style message on stderr).

Test seams
----------
Environment variables read only by this agent:

SAGESAVER_AGENT_NOW                 the current time (ISO 8601 or epoch seconds) instead of the
                                    clock
SAGESAVER_AGENT_PROC_STAT           file read instead of /proc/stat
SAGESAVER_AGENT_CPU_SAMPLE_SECONDS  length of the first-run CPU sample (default 1)
SAGESAVER_AGENT_HOME                the home directory whose SageMaker/.sagesaver-keep-alive is
                                    checked (instead of ~ and /home/ec2-user)
SAGESAVER_AGENT_REQUEST_TIMEOUT     seconds to wait for each Jupyter answer (default 10)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import sys
import time
from datetime import datetime, timedelta, timezone

# The typing module costs start-up time and annotations are strings at run time: import it for
# the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence

REQUIRED_IAM_ACTIONS = (
    "sagemaker:DescribeNotebookInstance",
    "sagemaker:StopNotebookInstance",
)

PROGRAM = "sagesaver-autostop"
DEFAULT_URL = "https://localhost:8443"
DEFAULT_STATE_FILE = "/var/lib/sagesaver/autostop-state.json"
DEFAULT_METADATA_FILE = "/opt/ml/metadata/resource-metadata.json"
KEEP_ALIVE_IN_HOME = os.path.join("SageMaker", ".sagesaver-keep-alive")
KEEP_ALIVE_BESIDE_STATE = "keep-alive"
NOTEBOOK_USER_HOME = "/home/ec2-user"
PROC_STAT = "/proc/stat"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
REQUEST_TIMEOUT = 10.0
COMMAND_TIMEOUT = 10.0
AWS_CLI_TIMEOUT = 60.0
DEFAULT_CPU_SAMPLE_SECONDS = 1.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
# Execution states in which a kernel is not working: it counts by its last_activity.
NOT_BUSY_STATES = frozenset(("idle", "starting", "restarting", "autorestarting", "dead"))
STATE_VERSION = 1
GPU_HINT = " (--gpu-threshold 0 skips the GPU check)"
CPU_HINT = " (--cpu-threshold 0 skips the CPU check)"
UTC = timezone.utc

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?)?\Z"
)
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d*)?\Z")
_URL = re.compile(
    r"(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::(\d{1,5}))?(/[^?#\s]*)?\Z",
    re.IGNORECASE,
)
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62}\Z")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+\Z")

_secrets: list[str] = []


class CheckError(Exception):
    """A check could not be made, or an action failed; the message is a reason."""


# ------------------------------------------------------------------------------------- output


def redact(text: str) -> str:
    """``text`` with every secret (the token) replaced by ``***``."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def format_time(moment: datetime) -> str:
    """``moment`` as an ISO 8601 UTC time to the second, with ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_seconds(seconds: float) -> str:
    """A duration in seconds, without a useless ``.0``."""
    if seconds == int(seconds):
        return str(int(seconds))
    return "{:.1f}".format(seconds)


def diagnose(message: str) -> None:
    """One diagnostic line on stderr, after the UTC time."""
    line = "{} {}: {}\n".format(format_time(datetime.now(UTC)), PROGRAM, " ".join(message.split()))
    sys.stderr.write(redact(line))
    sys.stderr.flush()


# -------------------------------------------------------------------------------------- times


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 time into an aware UTC datetime.

    Accepts a ``T`` or space separator, optional seconds, any number of fractional digits
    (truncated to microseconds), and ``Z``, ``+HH:MM``, ``+HHMM`` or ``+HH``; no offset means UTC.
    A date alone is midnight UTC. Raises ValueError.
    """
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError("not an ISO 8601 time: {!r}".format(text[:40]))
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction + "000000")[:6]) if fraction else 0
    offset = timedelta(0)
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        if sign == "-":
            offset = -offset
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=timezone(offset),
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise ValueError("not a valid time: {!r} ({})".format(text[:40], error)) from None


def parse_moment(text: str) -> datetime:
    """Parse Unix epoch seconds or an ISO 8601 time (see :func:`parse_timestamp`)."""
    text = text.strip()
    if _EPOCH.match(text):
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("epoch seconds out of range: {!r}".format(text[:40])) from None
    return parse_timestamp(text)


def current_time() -> datetime:
    """Now, in UTC (or ``SAGESAVER_AGENT_NOW``)."""
    fixed = os.environ.get("SAGESAVER_AGENT_NOW")
    if fixed:
        return parse_moment(fixed)
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------- Jupyter


class Server:
    """Where the Jupyter server listens: scheme, host, port and base path."""

    __slots__ = ("base_path", "host", "port", "tls")

    def __init__(self, url: str) -> None:
        match = _URL.match(url.strip())
        if match is None:
            raise ValueError(
                "expected http(s)://HOST[:PORT][/BASE_PATH], without credentials, query or fragment"
            )
        scheme, host, port, path = match.groups()
        self.tls = scheme.lower() == "https"
        self.host = host[1:-1] if host.startswith("[") else host
        self.port = int(port) if port else (443 if self.tls else 80)
        if not 0 < self.port < 65536:
            raise ValueError("port out of range")
        path = path or "/"
        self.base_path = path if path.endswith("/") else path + "/"

    @property
    def netloc(self) -> str:
        """``host:port``, with brackets around an IPv6 address."""
        host = "[{}]".format(self.host) if ":" in self.host else self.host
        return "{}:{}".format(host, self.port)

    def __str__(self) -> str:
        return "{}://{}{}".format("https" if self.tls else "http", self.netloc, self.base_path)


def accepts_self_signed(host: str) -> bool:
    """Whether a self-signed TLS certificate is accepted from ``host``.

    Only for this machine (localhost, 127.0.0.1, ::1), where Jupyter's own self-signed
    certificate is expected; any other host's certificate and name are verified.
    """
    return host.lower().rstrip(".") in LOCAL_HOSTS


def tls_context(host: str) -> ssl.SSLContext:
    """The TLS client context for ``host`` (see :func:`accepts_self_signed`)."""
    import ssl

    if accepts_self_signed(host):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context()


def _header_lines(head: bytes) -> tuple[list[str], dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, separator, value = line.partition(":")
        if separator:
            headers[name.strip().lower()] = value.strip()
    return lines, headers


def request_timeout() -> float:
    """Seconds to wait for a Jupyter answer (``SAGESAVER_AGENT_REQUEST_TIMEOUT``, default 10)."""
    try:
        seconds = float(os.environ.get("SAGESAVER_AGENT_REQUEST_TIMEOUT") or REQUEST_TIMEOUT)
    except ValueError:
        return REQUEST_TIMEOUT
    return seconds if math.isfinite(seconds) and seconds > 0 else REQUEST_TIMEOUT


def _read_response(sock: socket.socket, deadline: float) -> bytes:
    """Read an HTTP response until the server closes, or until it is complete by its headers.

    (HTTP/1.0 servers close after the answer; a server that keeps the connection open anyway
    is not waited for once Content-Length bytes, or the last chunk, have arrived.)
    """
    data = bytearray()
    header_end = -1
    expected = None  # the whole response's size, once the headers tell
    chunked = False
    while expected is None or len(data) < expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CheckError("no complete answer in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise CheckError("no complete answer in time") from None
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_RESPONSE_BYTES:
            raise CheckError("answer larger than {} bytes".format(MAX_RESPONSE_BYTES))
        if header_end < 0:
            header_end = data.find(b"\r\n\r\n")
            if header_end >= 0:
                headers = _header_lines(bytes(data[:header_end]))[1]
                length = headers.get("content-length", "")
                if length.isdigit():
                    expected = header_end + 4 + int(length)
                chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if chunked and data.endswith(b"\r\n0\r\n\r\n"):
            break
    return bytes(data)


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    position = 0
    while True:
        end_of_size = body.find(b"\r\n", position)
        if end_of_size < 0:
            raise CheckError("truncated answer (chunked)")
        try:
            size = int(body[position:end_of_size].split(b";")[0].strip(), 16)
        except ValueError:
            raise CheckError("malformed chunked answer") from None
        if size == 0:
            return bytes(out)
        start = end_of_size + 2
        if start + size + 2 > len(body):
            raise CheckError("truncated answer (chunked)")
        out += body[start : start + size]
        position = start + size + 2


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """Split a raw HTTP/1.x response into (status, body); checks the announced length."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        raise CheckError("incomplete HTTP answer ({} bytes)".format(len(raw)))
    lines, headers = _header_lines(raw[:end])
    status_line = lines[0].split(None, 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise CheckError("not an HTTP answer")
    if not status_line[1].isdigit():
        raise CheckError("not an HTTP answer")
    body = raw[end + 4 :]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit():
            raise CheckError("bad Content-Length")
        if len(body) < int(length):
            raise CheckError("truncated answer ({} of {} bytes)".format(len(body), length))
        body = body[: int(length)]
    return int(status_line[1]), body


def http_get(server: Server, path: str, token: str | None) -> tuple[int, bytes]:
    """GET ``path`` (relative to the base path) with HTTP/1.0; return (status, body).

    Raises OSError (connection, TLS, time-out) or CheckError (a broken answer).
    """
    lines = [
        "GET {}{} HTTP/1.0".format(server.base_path, path),
        "Host: {}".format(server.netloc),
        "Accept: application/json",
        "User-Agent: {}".format(PROGRAM),
        "Connection: close",
    ]
    if token:
        lines.append("Authorization: token {}".format(token))
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    timeout = request_timeout()
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        if server.tls:
            sock = tls_context(server.host).wrap_socket(sock, server_hostname=server.host)
        sock.sendall(request)
        raw = _read_response(sock, deadline)
    finally:
        sock.close()
    return parse_response(raw)


def get_json(server: Server, path: str, token: str | None, missing_ok: bool = False) -> object:
    """The JSON document at ``path`` (None for a 404 when ``missing_ok``); CheckError if not."""
    where = "/" + path
    try:
        status, body = http_get(server, path + "?no_track_activity=1", token)
    except CheckError as error:
        raise CheckError("Jupyter {}: {}".format(where, error)) from None
    except OSError as error:
        raise CheckError(
            "cannot reach Jupyter at {}: {}".format(server, str(error) or type(error).__name__)
        ) from None
    if status == 404 and missing_ok:
        return None
    if status in (401, 403):
        raise CheckError(
            "Jupyter {} answered HTTP {}: not authorised (check --token)".format(where, status)
        )
    if status != 200:
        raise CheckError("Jupyter {} answered HTTP {}".format(where, status))
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as error:
        raise CheckError("Jupyter {} answered malformed JSON ({})".format(where, error)) from None


class Evidence:
    """Something seen active at ``at``; ``busy`` evidence (at = now) blocks idleness outright."""

    __slots__ = ("at", "busy", "what")

    def __init__(self, at: datetime, what: str, busy: bool = False) -> None:
        self.at = at
        self.what = what
        self.busy = busy


def _as_dict(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise CheckError("Jupyter answered {} for {}, not an object".format(_kind(value), what))
    return value


def _as_list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise CheckError("Jupyter answered {} for {}, not a list".format(_kind(value), what))
    return value


def _kind(value: object) -> str:
    return "null" if value is None else "a " + type(value).__name__


def _time_field(item: dict[str, object], key: str, what: str) -> datetime:
    value = item.get(key)
    if not isinstance(value, str):
        raise CheckError("Jupyter answered {} without {}".format(what, key))
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise CheckError("Jupyter answered {} with a bad {}: {}".format(what, key, error)) from None


def kernel_evidence(
    value: object, where: str, now: datetime, ignore_connections: bool
) -> tuple[str, list[Evidence]]:
    """A kernel model's id and what it shows (see the module docstring for the rules)."""
    kernel = _as_dict(value, where)
    kernel_id = kernel.get("id")
    if not isinstance(kernel_id, str) or not kernel_id:
        raise CheckError("Jupyter answered {} without an id".format(where))
    name = kernel.get("name")
    label = "kernel {}".format(kernel_id[:8])
    if isinstance(name, str) and name:
        label += " ({})".format(name[:40])
    last_activity = _time_field(kernel, "last_activity", label)
    connections = kernel.get("connections", 0)
    if isinstance(connections, bool) or not isinstance(connections, int) or connections < 0:
        raise CheckError("Jupyter answered {} with a bad connections count".format(label))
    state = kernel.get("execution_state")
    found = []
    if state == "busy":
        found.append(Evidence(now, "{} is busy".format(label), busy=True))
    elif isinstance(state, str) and state in NOT_BUSY_STATES:
        found.append(Evidence(last_activity, "{} ({})".format(label, state)))
    else:
        shown = repr(state[:40]) if isinstance(state, str) else _kind(state)
        found.append(
            Evidence(
                now,
                "{} is in unknown execution state {} (counted as busy)".format(label, shown),
                busy=True,
            )
        )
    if connections and not ignore_connections:
        found.append(
            Evidence(
                now,
                "{} has {} open connection(s) (see --ignore-connections)".format(
                    label, connections
                ),
                busy=True,
            )
        )
    return kernel_id, found


def jupyter_evidence(
    status: object,
    kernels: object,
    sessions: object,
    terminals: object,
    now: datetime,
    ignore_connections: bool,
) -> list[Evidence]:
    """What the Jupyter answers show; CheckError when an answer has the wrong shape."""
    started = _time_field(_as_dict(status, "/api/status"), "started", "/api/status")
    found = [Evidence(started, "Jupyter server started")]
    seen = set()
    for index, item in enumerate(_as_list(kernels, "/api/kernels")):
        kernel_id, shown = kernel_evidence(
            item, "kernel #{}".format(index), now, ignore_connections
        )
        seen.add(kernel_id)
        found.extend(shown)
    for index, item in enumerate(_as_list(sessions, "/api/sessions")):
        where = "session #{}".format(index)
        session = _as_dict(item, where)
        if "last_activity" in session:
            label = session.get("path") or session.get("name") or session.get("id")
            if isinstance(label, str):
                where = "session {}".format(label[:80])
            found.append(Evidence(_time_field(session, "last_activity", where), where))
        kernel = session.get("kernel")
        if kernel is None:
            continue
        kernel_id, shown = kernel_evidence(kernel, where + " kernel", now, ignore_connections)
        if kernel_id not in seen:
            seen.add(kernel_id)
            found.extend(shown)
    if terminals is not None:
        for index, item in enumerate(_as_list(terminals, "/api/terminals")):
            terminal = _as_dict(item, "terminal #{}".format(index))
            name = terminal.get("name")
            label = "terminal {}".format(name if isinstance(name, (str, int)) else "#" + str(index))
            found.append(Evidence(_time_field(terminal, "last_activity", label), label))
    return found


def read_jupyter(
    server: Server, token: str | None, now: datetime, ignore_connections: bool
) -> list[Evidence]:
    """Ask the Jupyter server about its kernels, sessions and terminals."""
    status = get_json(server, "api/status", token)
    kernels = get_json(server, "api/kernels", token)
    sessions = get_json(server, "api/sessions", token)
    terminals = get_json(server, "api/terminals", token, missing_ok=True)
    if terminals is None:
        diagnose("Jupyter has no /api/terminals (terminals disabled): no terminal to watch")
    return jupyter_evidence(status, kernels, sessions, terminals, now, ignore_connections)


# ------------------------------------------------------------------------------------- state


class CpuSample:
    """Cumulative CPU counters (jiffies of all CPUs) read at ``at``, during boot ``boot_id``."""

    __slots__ = ("at", "boot_id", "busy", "total")

    def __init__(self, busy: int, total: int, at: datetime, boot_id: str | None) -> None:
        self.busy = busy
        self.total = total
        self.at = at
        self.boot_id = boot_id


class State:
    """What the agent keeps between runs: the latest activity seen and the last CPU sample."""

    __slots__ = ("cpu", "last_activity")

    def __init__(self) -> None:
        self.last_activity: Evidence | None = None
        self.cpu: CpuSample | None = None

    def to_json(self, now: datetime) -> str:
        """The state file's content."""
        document: dict[str, object] = {"version": STATE_VERSION, "saved": format_time(now)}
        if self.last_activity is not None:
            document["last_activity"] = {
                "at": self.last_activity.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "what": self.last_activity.what,
            }
        if self.cpu is not None:
            document["cpu"] = {
                "busy": self.cpu.busy,
                "total": self.cpu.total,
                "at": self.cpu.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "boot_id": self.cpu.boot_id,
            }
        return json.dumps(document, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        """Parse a state file's content; ValueError when it is not one."""
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
            raise ValueError("not a version {} state".format(STATE_VERSION))
        state = cls()
        activity = document.get("last_activity")
        if activity is not None:
            if not isinstance(activity, dict):
                raise ValueError("bad last_activity")
            at, what = activity.get("at"), activity.get("what")
            if not isinstance(at, str) or not isinstance(what, str):
                raise ValueError("bad last_activity")
            state.last_activity = Evidence(parse_timestamp(at), what)
        cpu = document.get("cpu")
        if cpu is not None:
            if not isinstance(cpu, dict):
                raise ValueError("bad cpu sample")
            busy, total, at, boot_id = (cpu.get(k) for k in ("busy", "total", "at", "boot_id"))
            if not (isinstance(busy, int) and isinstance(total, int) and isinstance(at, str)):
                raise ValueError("bad cpu sample")
            if boot_id is not None and not isinstance(boot_id, str):
                raise ValueError("bad cpu sample")
            state.cpu = CpuSample(busy, total, parse_timestamp(at), boot_id)
        return state


def fallback_state_file() -> str:
    """The state file in the user's state directory (XDG_STATE_HOME or ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "sagesaver", "autostop-state.json")


def choose_state_file(candidates: Sequence[str]) -> str:
    """The first candidate whose directory exists (or can be made) and is writable."""
    for candidate in candidates:
        directory = os.path.dirname(os.path.abspath(candidate))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError:
            continue
        if os.access(directory, os.W_OK | os.X_OK):
            return candidate
    return candidates[-1]


def load_state(path: str) -> tuple[State, str | None]:
    """The saved state (empty when there is none) and a problem with it, if any."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1024 * 1024)
    except FileNotFoundError:
        return State(), None
    except OSError as error:
        return State(), "state file {} cannot be read ({})".format(path, error.strerror or error)
    try:
        return State.from_json(text), None
    except ValueError as error:
        return State(), "state file {} is corrupt ({})".format(path, error)


def save_state(path: str, state: State, now: datetime) -> None:
    """Write the state atomically (a temporary file, then a rename). Raises OSError."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = "{}.{}.tmp".format(path, os.getpid())
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(state.to_json(now))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# ---------------------------------------------------------------------------------- CPU, GPU


def read_cpu_counters(path: str) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from the ``cpu`` line of ``/proc/stat``."""
    with open(path, "rb") as handle:
        line = handle.readline(4096).decode("ascii", "replace")
    fields = line.split()
    if len(fields) < 5 or fields[0] != "cpu":
        raise ValueError("no 'cpu' line")
    values = [int(value) for value in fields[1:9]]
    values += [0] * (8 - len(values))
    user, nice, system, idle, iowait, irq, softirq, steal = values
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def cpu_usage(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Percent of CPU time busy between two counter readings; None if the counters went back."""
    busy, total = after[0] - before[0], after[1] - before[1]
    if busy < 0 or total < 0:
        return None
    if total == 0:
        return 0.0
    return min(100.0, 100.0 * busy / total)


def read_boot_id() -> str | None:
    """This boot's id (CPU counters restart at boot), None where there is none."""
    try:
        with open(BOOT_ID, encoding="ascii") as handle:
            return handle.read(100).strip() or None
    except (OSError, ValueError):
        return None


def _cpu_sample_seconds() -> float:
    text = os.environ.get("SAGESAVER_AGENT_CPU_SAMPLE_SECONDS", "")
    try:
        seconds = float(text) if text else DEFAULT_CPU_SAMPLE_SECONDS
    except ValueError:
        seconds = DEFAULT_CPU_SAMPLE_SECONDS
    return seconds if math.isfinite(seconds) and seconds >= 0 else DEFAULT_CPU_SAMPLE_SECONDS


def check_cpu(
    threshold: float, previous: CpuSample | None, now: datetime
) -> tuple[Evidence | None, CpuSample]:
    """CPU use since the previous sample (or over a short sample): evidence if at/above."""
    path = os.environ.get("SAGESAVER_AGENT_PROC_STAT") or PROC_STAT
    boot_id = read_boot_id()
    try:
        current = read_cpu_counters(path)
        usage = None
        if previous is not None and previous.boot_id == boot_id:
            usage = cpu_usage((previous.busy, previous.total), current)
            span = "since the previous run at {}".format(format_time(previous.at))
        if usage is None:
            seconds = _cpu_sample_seconds()
            time.sleep(seconds)
            first, current = current, read_cpu_counters(path)
            usage = cpu_usage(first, current) or 0.0
            span = "over a {:g} s sample (no usable previous sample)".format(seconds)
    except (OSError, ValueError) as error:
        raise CheckError(
            "cannot read CPU use from {}: {}{}".format(path, error, CPU_HINT)
        ) from None
    sample = CpuSample(current[0], current[1], now, boot_id)
    if usage >= threshold:
        what = "CPU use {:.1f}% {} >= --cpu-threshold {:g}%".format(usage, span, threshold)
        return Evidence(now, what, busy=True), sample
    return None, sample


def find_executable(name: str) -> str | None:
    """The first executable file ``name`` on PATH."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def check_gpu(threshold: float, now: datetime) -> Evidence | None:
    """Utilisation of the busiest GPU, when nvidia-smi is on PATH: evidence if at/above."""
    executable = find_executable("nvidia-smi")
    if executable is None:
        return None
    import subprocess

    command = [executable, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
    try:
        process = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=COMMAND_TIMEOUT,
            universal_newlines=True,
        )
    except subprocess.TimeoutExpired:
        raise CheckError(
            "nvidia-smi did not answer within {:g} s{}".format(COMMAND_TIMEOUT, GPU_HINT)
        ) from None
    except (OSError, subprocess.SubprocessError) as error:
        raise CheckError("cannot run nvidia-smi: {}{}".format(error, GPU_HINT)) from None
    if process.returncode != 0:
        raise CheckError(
            "nvidia-smi failed (exit {}): {}{}".format(
                process.returncode, _last_line(process.stderr or process.stdout), GPU_HINT
            )
        )
    values = []
    for line in process.stdout.splitlines():
        if not line.strip():
            continue
        try:
            value = float(line)
        except ValueError:
            value = float("nan")
        if not 0 <= value <= 100:
            raise CheckError(
                "nvidia-smi printed {!r}, not a GPU utilisation{}".format(line[:40], GPU_HINT)
            )
        values.append(value)
    if not values:
        raise CheckError("nvidia-smi listed no GPU{}".format(GPU_HINT))
    peak = max(values)
    if peak >= threshold:
        what = "GPU use {:g}% >= --gpu-threshold {:g}%".format(peak, threshold)
        return Evidence(now, what, busy=True)
    return None


# ---------------------------------------------------------------------------------- keep-alive


def keep_alive_files(state_file: str) -> list[str]:
    """The keep-alive files to look at, in order."""
    home = os.environ.get("SAGESAVER_AGENT_HOME")
    homes = [home] if home else [os.path.expanduser("~"), NOTEBOOK_USER_HOME]
    paths = []
    for directory in homes:
        path = os.path.join(directory, KEEP_ALIVE_IN_HOME)
        if path not in paths:
            paths.append(path)
    paths.append(
        os.path.join(os.path.dirname(os.path.abspath(state_file)), KEEP_ALIVE_BESIDE_STATE)
    )
    return paths


def check_keep_alive(paths: Sequence[str], now: datetime) -> tuple[list[str], list[str]]:
    """(holds, notes): files that keep the instance up, and expired ones."""
    holds, notes = [], []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(256)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            holds.append(
                "keep-alive file {} cannot be read ({}): keeping the instance up".format(
                    path, error.strerror or error
                )
            )
            continue
        try:
            until = parse_moment(raw.decode("utf-8", "replace"))
        except ValueError:
            holds.append(
                "keep-alive file {} holds no time (ISO 8601 or epoch seconds): "
                "keeping the instance up".format(path)
            )
            continue
        if until > now:
            holds.append(
                "keep-alive file {} holds the instance until {}".format(path, format_time(until))
            )
        else:
            notes.append("keep-alive file {} expired at {}".format(path, format_time(until)))
    return holds, notes


# -------------------------------------------------------------------------------------- stop


def read_metadata(path: str) -> tuple[str, str | None]:
    """(notebook instance name, region or None) from SageMaker's resource metadata file."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.loads(handle.read(1024 * 1024))
    except FileNotFoundError:
        raise CheckError(
            "metadata file {} is missing: cannot tell which notebook instance this is".format(path)
        ) from None
    except OSError as error:
        raise CheckError(
            "metadata file {} cannot be read ({})".format(path, error.strerror or error)
        ) from None
    except ValueError:
        raise CheckError("metadata file {} is not valid JSON".format(path)) from None
    if not isinstance(document, dict):
        raise CheckError("metadata file {} is not a JSON object".format(path))
    name = document.get("ResourceName")
    if not isinstance(name, str) or not _INSTANCE_NAME.match(name):
        raise CheckError("metadata file {} has no valid ResourceName".format(path))
    region = None
    arn = document.get("ResourceArn")
    if isinstance(arn, str):
        parts = arn.split(":")
        if len(parts) >= 6 and parts[0] == "arn" and _REGION.match(parts[3]):
            region = parts[3]
    if region is None:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    return name, region


def sagemaker_endpoint_url() -> str | None:
    """The endpoint URL boto3 would use for SageMaker from the environment, if any."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return (
        os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER") or os.environ.get("AWS_ENDPOINT_URL") or None
    )


def _stop_with_boto3(name: str, region: str | None) -> tuple[str, str, bool]:
    import boto3
    from botocore.config import Config

    try:
        client = boto3.client(
            "sagemaker",
            region_name=region,
            endpoint_url=sagemaker_endpoint_url(),
            config=Config(retries={"max_attempts": 0}, connect_timeout=10, read_timeout=30),
        )
        described = client.describe_notebook_instance(NotebookInstanceName=name)
        status = str(described.get("NotebookInstanceStatus"))
    except Exception as error:
        return "none", "DescribeNotebookInstance {} failed: {}".format(name, error), False
    if status != "InService":
        return "none", _not_in_service(name, status), True
    try:
        client.stop_notebook_instance(NotebookInstanceName=name)
    except Exception as error:
        return "none", "StopNotebookInstance {} failed: {}".format(name, error), False
    return "stop", "stopped notebook instance {} (StopNotebookInstance accepted)".format(name), True


def _not_in_service(name: str, status: str) -> str:
    return "notebook instance {} is {}, not InService: nothing to stop".format(name, status)


def _run_aws(command: list[str]) -> str:
    import subprocess

    environment = dict(os.environ)
    environment["AWS_PAGER"] = ""
    try:
        process = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=AWS_CLI_TIMEOUT,
            universal_newlines=True,
            env=environment,
        )
    except subprocess.TimeoutExpired:
        raise CheckError("no answer within {:g} s".format(AWS_CLI_TIMEOUT)) from None
    except (OSError, subprocess.SubprocessError) as error:
        raise CheckError(str(error)) from None
    if process.returncode != 0:
        raise CheckError(
            "exit {}: {}".format(process.returncode, _last_line(process.stderr or process.stdout))
        )
    return process.stdout


def _stop_with_cli(name: str, region: str | None) -> tuple[str, str, bool]:
    aws = find_executable("aws")
    if aws is None:
        return "none", "cannot stop: neither boto3 nor the aws command line is available", False
    options = ["--notebook-instance-name", name]
    if region:
        options += ["--region", region]
    endpoint = sagemaker_endpoint_url()
    if endpoint:
        options += ["--endpoint-url", endpoint]
    describe = [aws, "sagemaker", "describe-notebook-instance", *options, "--output", "json"]
    try:
        described = json.loads(_run_aws(describe))
        status = str(described.get("NotebookInstanceStatus"))
    except (CheckError, ValueError, AttributeError) as error:
        reason = "aws sagemaker describe-notebook-instance {} failed: {}".format(name, error)
        return "none", reason, False
    if status != "InService":
        return "none", _not_in_service(name, status), True
    try:
        _run_aws([aws, "sagemaker", "stop-notebook-instance", *options])
    except CheckError as error:
        return (
            "none",
            "aws sagemaker stop-notebook-instance {} failed: {}".format(name, error),
            False,
        )
    return (
        "stop",
        "stopped notebook instance {} (aws sagemaker stop-notebook-instance)".format(name),
        True,
    )


def stop_instance(name: str, region: str | None) -> tuple[str, str, bool]:
    """Stop the notebook instance if it is InService: (action, reason, succeeded)."""
    try:
        import boto3  # noqa: F401  (only to learn whether it can be imported)
    except Exception as error:  # missing, or broken by a changed host image
        diagnose("boto3 unavailable ({}): using the aws command line".format(type(error).__name__))
        return _stop_with_cli(name, region)
    return _stop_with_boto3(name, region)


# -------------------------------------------------------------------------------------- a run


def run(options: argparse.Namespace, now: datetime) -> tuple[dict[str, object], int]:
    """One pass: look, decide, remember, act. Returns (the JSON result, the exit code)."""
    limit: float = options.time
    state_file: str = options.state_file or choose_state_file(
        [DEFAULT_STATE_FILE, fallback_state_file()]
    )
    state, state_problem = load_state(state_file)
    evidence: list[Evidence] = []
    errors: list[str] = []
    if state.last_activity is not None:
        evidence.append(state.last_activity)
    if state_problem is not None:
        diagnose(state_problem)
        evidence.append(Evidence(now, state_problem + ": counted as activity now", busy=True))

    try:
        evidence.extend(read_jupyter(options.url, options.token, now, options.ignore_connections))
    except CheckError as error:
        errors.append(str(error))

    new_cpu = None
    if options.cpu_threshold > 0:
        try:
            found, new_cpu = check_cpu(options.cpu_threshold, state.cpu, now)
            if found is not None:
                evidence.append(found)
        except CheckError as error:
            errors.append(str(error))
    if options.gpu_threshold > 0:
        try:
            found = check_gpu(options.gpu_threshold, now)
            if found is not None:
                evidence.append(found)
        except CheckError as error:
            errors.append(str(error))
    holds, notes = check_keep_alive(keep_alive_files(state_file), now)

    instance, region, metadata_problem = None, None, None
    try:
        instance, region = read_metadata(options.metadata_file)
    except CheckError as error:
        metadata_problem = str(error)

    latest = None
    if evidence:
        newest = max(evidence, key=lambda item: item.at)
        latest = Evidence(min(newest.at, now), newest.what)
    idle_seconds = (now - latest.at).total_seconds() if latest is not None else 0.0
    busy = [item.what for item in evidence if item.busy]
    idle = not errors and not busy and not holds and latest is not None and idle_seconds >= limit

    reasons = errors + busy + holds
    if latest is not None and not errors and not busy:
        if idle_seconds >= limit:
            reasons.append(
                "no activity for {} s (--time {} s); last: {} at {}".format(
                    format_seconds(round(idle_seconds)),
                    format_seconds(limit),
                    latest.what,
                    format_time(latest.at),
                )
            )
        else:
            reasons.append(
                "last activity {} s ago, less than --time {} s: {} at {}".format(
                    format_seconds(round(idle_seconds)),
                    format_seconds(limit),
                    latest.what,
                    format_time(latest.at),
                )
            )
    reasons += notes
    for problem in errors:
        diagnose(problem)

    failed = bool(errors)
    remembered = State()
    remembered.last_activity = latest
    remembered.cpu = new_cpu
    try:
        save_state(state_file, remembered, now)
    except OSError as error:
        unsaved = "cannot save the state file {}: {}".format(state_file, error.strerror or error)
        diagnose(unsaved)
        reasons.append(unsaved)
        failed = True

    action = "none"
    if metadata_problem is not None:
        diagnose(metadata_problem)
        reasons.append(metadata_problem)
        failed = True
    elif idle and instance is not None and options.dry_run:
        action = "would-stop"
        reasons.append("--dry-run: would stop notebook instance {}".format(instance))
    elif idle and instance is not None:
        diagnose(
            "idle for {} s: stopping notebook instance {}".format(round(idle_seconds), instance)
        )
        action, outcome, succeeded = stop_instance(instance, region)
        reasons.append(outcome)
        diagnose(outcome)
        failed = failed or not succeeded

    result: dict[str, object] = {
        "idle": idle,
        "idle_seconds": round(idle_seconds, 1),
        "action": action,
        "reasons": [redact(reason) for reason in reasons],
        "instance": instance,
    }
    return result, 1 if failed else 0


# --------------------------------------------------------------------------------- the command


def _seconds_option(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("{!r} is not a number of seconds".format(text)) from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError("must be more than 0 seconds, got {!r}".format(text))
    return value


def _percent_option(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("{!r} is not a percentage".format(text)) from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 0 and 100, got {!r}".format(text))
    return value


def _url_option(text: str) -> Server:
    try:
        return Server(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _token_option(text: str) -> str:
    if any(character.isspace() or ord(character) < 32 for character in text):
        raise argparse.ArgumentTypeError("must not contain spaces or control characters")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command line parser."""
    parser = argparse.ArgumentParser(
        prog="autostop.py",
        description="Stop this SageMaker notebook instance once it has been idle for --time "
        "seconds (kernels, terminals, CPU, GPU and keep-alive files are watched). Prints one "
        "JSON line; exit 0 decided, 1 failed, 2 bad options.",
    )
    parser.add_argument(
        "--time", type=_seconds_option, required=True, metavar="SECONDS", help="idle time to stop"
    )
    parser.add_argument(
        "--url", type=_url_option, default=DEFAULT_URL, help="Jupyter server (%(default)s)"
    )
    parser.add_argument(
        "--token",
        type=_token_option,
        default=os.environ.get("JUPYTER_TOKEN") or None,
        help="Jupyter token (default: $JUPYTER_TOKEN)",
    )
    parser.add_argument(
        "--ignore-connections",
        action="store_true",
        help="open kernel connections (browser tabs) are not activity",
    )
    parser.add_argument(
        "--cpu-threshold",
        type=_percent_option,
        default=10.0,
        metavar="PERCENT",
        help="CPU use counted as activity (default 10; 0 disables)",
    )
    parser.add_argument(
        "--gpu-threshold",
        type=_percent_option,
        default=10.0,
        metavar="PERCENT",
        help="GPU use counted as activity (default 10; 0 disables)",
    )
    parser.add_argument(
        "--state-file",
        metavar="PATH",
        help="state kept between runs (default {}, or a user directory)".format(DEFAULT_STATE_FILE),
    )
    parser.add_argument(
        "--metadata-file",
        metavar="PATH",
        default=DEFAULT_METADATA_FILE,
        help="SageMaker resource metadata (%(default)s)",
    )
    parser.add_argument("--dry-run", action="store_true", help='report "would-stop", do not stop')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run once; print the JSON result; return the exit code."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.token:
        _secrets.append(options.token)
    try:
        now = current_time()
    except ValueError as error:
        parser.error("SAGESAVER_AGENT_NOW: {}".format(error))
    try:
        result, code = run(options, now)
    except Exception as error:  # a bug must not go unnoticed, nor stop the instance
        problem = "internal error: {}: {}".format(type(error).__name__, error)
        diagnose(problem)
        result = {
            "idle": False,
            "idle_seconds": 0,
            "action": "none",
            "reasons": [redact(problem)],
            "instance": None,
        }
        code = 1
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
