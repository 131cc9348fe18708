"""SageSaver auto-stop agent: stops this SageMaker notebook instance once it has been idle.

It runs on the notebook instance, from cron every 5 minutes, as
``python3 autostop.py --time 3600 [options]``. It is one file, uses only the standard library and
runs on Python 3.7 or newer, so a lifecycle configuration can inline it (no download, works in a
VPC without internet) and it does not depend on what the host's Python has installed: even the
stop request is signed here (AWS Signature V4 with hashlib and hmac, sent with urllib; no boto3,
no ``aws`` command line, see "Stopping").

Idle
----
The instance is idle when, for at least ``--time`` seconds, all of these held:

* Kernels (``/api/kernels`` and the kernels of ``/api/sessions``): none was busy, and every
  kernel's (and session's) ``last_activity`` is older. Open connections (browser tabs) do not
  count: a tab left open must not keep an instance up (``--ignore-connections``, the default, is
  still accepted); with ``--count-connections`` a kernel with an open connection counts as busy.
  A kernel that is ``starting``, ``restarting`` or ``dead`` counts by its ``last_activity``, so
  one stuck in ``starting`` for longer than ``--time`` does not block stopping. A kernel reported
  ``busy`` whose ``last_activity`` (its latest message, e.g. output) is older than
  ``--max-busy-hours`` (default 24) counts by that ``last_activity`` instead of as busy: a cell
  hung for a day does not hold the instance for ever, while the CPU rule below still keeps up
  an instance whose silent kernel computes (with ``--cpu-threshold 0`` nothing does). A kernel
  in an execution state this agent does not know (or with none) counts as busy: unknown means
  "maybe working", and stopping mid-work is worse than staying up. Sessions whose kernel is null
  are skipped.
* Terminals (``/api/terminals``): every ``last_activity`` is older. (A 404 there means the server
  has no terminals.)
* CPU, per core: the use of every core (the ``cpuN`` lines of ``/proc/stat``; the ``cpu`` line
  when there are none), averaged since the previous run (the counters are kept in the state
  file), stayed under ``--cpu-threshold`` percent. The rule is: busy if ANY core is at or above
  the threshold, so a single-threaded ``nohup python train.py &`` keeps a 16-core instance up
  though it uses 6 % of the machine. Busy time is user + nice + system + irq + softirq + steal;
  idle and iowait are not busy. With no usable previous sample (first run, state lost, reboot,
  another number of cores) the agent takes a 1-second sample.
* GPU: when ``nvidia-smi`` is on PATH, the utilisation of every GPU, sampled at each run, stayed
  under ``--gpu-threshold`` percent.
* No keep-alive file holds the instance (see below).

CPU or GPU use at or above its threshold counts as activity "now". The agent remembers in its
state file the latest activity it has seen; idle time runs from the latest of that, the Jupyter
server's start (``started`` of ``/api/status``) and every kernel, session and terminal activity.
The ``last_activity`` of ``/api/status`` is not used: API polling (a browser tab left open, or this
agent) moves it. The agent's own requests carry ``no_track_activity=1``. All times are aware UTC
datetimes, so the host's time zone does not matter. Jupyter times are parsed with or without
fractional seconds (any number of digits) and with ``Z`` or an offset; a time in the future counts
as now. A state file that cannot be read or parsed counts as activity now (conservative) and is
rewritten. Jupyter is asked with a minimal HTTP/1.0 client on a socket (``http.client`` would
double the start-up time), with a 10-second time-out per answer.

Keep-alive
----------
``~/SageMaker/.sagesaver-keep-alive`` (checked for the current user and for ``/home/ec2-user``)
or ``keep-alive`` beside the state file holds the instance up until the time it contains: an ISO
8601 time (``2030-06-01T18:00:00Z``, ``2030-06-01 20:00+02:00``, a time without offset is UTC) or
Unix epoch seconds, e.g. ``date -d '+3 hours' +%s > ~/SageMaker/.sagesaver-keep-alive``. A time in
the past is ignored. A file that cannot be read or does not hold a time (an empty one too) keeps
the instance up, and the reasons say so. Only a regular file is read, opened non-blocking and
checked before and after opening, and only its first 4 KiB: a FIFO, a device or a directory
"cannot be read (not a regular file)", and a huge file costs one 4 KiB read (and holds no time).

Notice
------
With ``--warn-minutes N`` (default 10; 0: no notice) the agent warns before it stops. When it
first finds the instance idle for ``--time`` less N minutes (at once when N is ``--time`` or
more), it writes ``SAGESAVER-STOPS-AT-HH-MM.txt`` at the top of the notebook home
(``--notice-dir``, default ``/home/ec2-user/SageMaker``; HH-MM is the planned stop in the
instance's time zone, which the file names), saying when it stops, since when and what was last
active, and how to keep it, and writes one line to every pseudo-terminal in ``/dev/pts`` (Jupyter's
terminals are not in utmp, so ``wall`` would miss them). The stop is planned ``--time`` after the
last activity, and at least N minutes (at most ``--time``) after the notice: with cron every
5 minutes and N at least 5 this is the run that would have stopped without a notice; an instance
found idle for too long at first sight (a new agent, an expired keep-alive) gets its N minutes.
The agent then stops only if nothing changed: any new activity, a keep-alive file that holds,
or one touched (its modification time) after the notice, cancels the stop and removes the
notice; a new notice replaces the old one. The notice is kept in the state file. Writing the
notice or to a terminal may fail (it is logged): that never stops the agent, nor the stop.
``--dry-run`` writes no notice and reports "would-stop" as without one.

Stopping
--------
When idle (and past its notice), and not ``--dry-run``, the agent reads ``ResourceName`` and
the region (from ``ResourceArn``; else ``AWS_REGION`` or ``AWS_DEFAULT_REGION``) in the metadata
file, checks with ``DescribeNotebookInstance`` that the instance is ``InService`` and calls
``StopNotebookInstance``.
Each is exactly one HTTPS request (SageMaker's JSON 1.1 protocol: ``POST /`` with
``X-Amz-Target: SageMaker.<action>``), signed here with AWS Signature V4, with no retry on any
path: the next cron run is the retry. The endpoint is
``https://api.sagemaker.REGION.amazonaws.com`` (``.amazonaws.com.cn`` for ``cn-*`` regions);
``AWS_ENDPOINT_URL_SAGEMAKER`` or ``AWS_ENDPOINT_URL`` replaces it, as in boto3, unless
``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``.
Credentials come from ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (and
``AWS_SESSION_TOKEN``) when set, else from the instance role through IMDSv2 (a session token from
``PUT /latest/api/token``, then ``/latest/meta-data/iam/security-credentials/ROLE``, without a
proxy); credentials past their ``Expiration`` are refused. The instance role needs exactly the
IAM actions in ``REQUIRED_IAM_ACTIONS``. The metadata file is read at every run: when it is
missing or invalid the run reports it and exits 1 even when the instance is not idle, so a broken
set-up shows in the log at once (``instance`` is then null; ``idle`` may still be true).

Options
-------
--time SECONDS          idle time after which the instance is stopped (required, > 0)
--url URL               Jupyter server (default https://localhost:8443). A self-signed TLS
                        certificate is accepted only for localhost, 127.0.0.1 and ::1; any other
                        host's certificate is verified.
--token TOKEN           Jupyter token, sent as ``Authorization: token ...`` (default: the
                        ``JUPYTER_TOKEN`` environment variable, which keeps it out of ``ps``)
--count-connections     open kernel connections (browser tabs) count as activity
--ignore-connections    the default (connections do not count); accepted for old entries
--max-busy-hours HOURS  a kernel busy with no message for longer no longer counts as busy
                        (default 24, > 0)
--cpu-threshold PERCENT CPU use that counts as activity (default 10; 0 disables the CPU check)
--gpu-threshold PERCENT GPU use that counts as activity (default 10; 0 disables the GPU check)
--state-file PATH       where the agent keeps what it has seen (default
                        /var/lib/sagesaver/autostop-state.json, or
                        $XDG_STATE_HOME/sagesaver/autostop-state.json, by default
                        ~/.local/state/..., when that directory cannot be written)
--metadata-file PATH    SageMaker's resource metadata (default
                        /opt/ml/metadata/resource-metadata.json)
--dry-run               report "would-stop" instead of stopping
--warn-minutes N        minutes of notice before a stop (default 10, 0 to 1440; 0: none)
--notice-dir DIR        where the notice file goes (default /home/ec2-user/SageMaker)

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
                                    checked (instead of ~ and /home/ec2-user), and whose
                                    SageMaker/ gets the notice
SAGESAVER_AGENT_REQUEST_TIMEOUT     seconds to wait for each Jupyter answer (default 10)
SAGESAVER_AGENT_IMDS_URL            the instance metadata service (default
                                    http://169.254.169.254)
SAGESAVER_AGENT_DEV                 the directory whose pts/ gets the terminal line (default /dev)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import stat
import sys
import time
from datetime import datetime, timedelta, timezone

# The typing module costs start-up time and annotations are strings at run time: import it for
# the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence
    from typing import Any

REQUIRED_IAM_ACTIONS = (
    "sagemaker:DescribeNotebookInstance",
    "sagemaker:StopNotebookInstance",
)

PROGRAM = "sagesaver-autostop"
DEFAULT_URL = "https://localhost:8443"
DEFAULT_STATE_FILE = "/var/lib/sagesaver/autostop-state.json"
DEFAULT_METADATA_FILE = "/opt/ml/metadata/resource-metadata.json"
KEEP_ALIVE_IN_HOME = os.path.join("SageMaker", ".sagesaver-keep-alive")
NOTEBOOK_USER_HOME = "/home/ec2-user"
REQUEST_TIMEOUT = 10.0
COMMAND_TIMEOUT = 10.0
AWS_TIMEOUT = 30.0
IMDS_URL = "http://169.254.169.254"
IMDS_TTL = "X-aws-ec2-metadata-token-ttl-seconds"
LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
# Execution states in which a kernel is not working: it counts by its last_activity.
NOT_BUSY_STATES = frozenset(("idle", "starting", "restarting", "autorestarting", "dead"))
STATE_VERSION = 2
GPU_HINT = " (--gpu-threshold 0 skips the GPU check)"
CPU_HINT = " (--cpu-threshold 0 skips the CPU check)"
NO_ANSWER = "no complete answer in time"
API = ("status", "kernels", "sessions")
STATUS = "NotebookInstanceStatus"
UTC = timezone.utc

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?"
    r"\s*(?:[Zz]|([+-])(\d\d):?(\d\d)?)?)?\Z"
)
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d*)?\Z")
_URL = re.compile(
    r"(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::(\d{1,5}))?(/[^?#\s]*)?\Z", re.I
)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r", re.I)
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62}\Z")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+\Z")
_NOTICE = re.compile(r"SAGESAVER-STOPS-AT-\d\d-\d\d\.txt\Z")
NOTICE = """SageSaver will STOP this notebook instance ({}) at {}:
no activity since {} ({}); --time is {:g} min. To keep it, run a cell, type in
a terminal or run: touch {}
Any of these cancels the stop and removes this file.
"""

_secrets: list[str] = []


class CheckError(Exception):
    """A check could not be made, or an action failed; the message is a reason."""


def redact(text: str) -> str:
    """``text`` with every secret (the token) replaced by ``***``."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def format_time(moment: datetime, precise: bool = False) -> str:
    """``moment`` as an ISO 8601 UTC time with ``Z`` (to the second unless ``precise``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S" + (".%fZ" if precise else "Z"))


def format_seconds(seconds: float) -> str:
    """A duration in seconds, without a useless ``.0``."""
    return str(int(seconds)) if seconds == int(seconds) else "{:.1f}".format(seconds)


def diagnose(message: str) -> None:
    """One diagnostic line on stderr, after the UTC time."""
    line = " ".join(message.split())
    sys.stderr.write(redact("{} {}: {}\n".format(format_time(datetime.now(UTC)), PROGRAM, line)))
    sys.stderr.flush()


def number_from_env(name: str, default: float) -> float:
    """A positive (or zero) number from the environment; ``default`` when unset or invalid."""
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


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
    fields = match.groups()
    year, month, day, hour, minute, second = (int(field or 0) for field in fields[:6])
    micro = int((fields[6] or "").ljust(6, "0")[:6])
    offset = timedelta(hours=int(fields[8] or 0), minutes=int(fields[9] or 0))
    try:
        zone = timezone(-offset if fields[7] == "-" else offset)
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
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
    try:
        return parse_moment(fixed) if fixed else datetime.now(UTC)
    except ValueError as error:
        raise ValueError("SAGESAVER_AGENT_NOW: {}".format(error)) from None


# ------------------------------------------------------------------------------------- Jupyter


class Server:
    """Where the Jupyter server listens: TLS or not, host, port and base path."""

    def __init__(self, url: str) -> None:
        match = _URL.match(url.strip())
        if match is None:
            raise ValueError("expected http(s)://HOST[:PORT][/PATH], no query")
        scheme, host, port, path = match.groups()
        self.tls = scheme.lower() == "https"
        self.host = host.strip("[]")
        self.port = int(port or (443 if self.tls else 80))
        if not 0 < self.port < 65536:
            raise ValueError("port out of range")
        self.base_path = (path or "").rstrip("/") + "/"
        host = "[{}]".format(self.host) if ":" in self.host else self.host
        self.netloc = "{}:{}".format(host, self.port)


def accepts_self_signed(host: str) -> bool:
    """Whether a self-signed TLS certificate is accepted from ``host``.

    Only for this machine (localhost, 127.0.0.1, ::1), where Jupyter's own self-signed
    certificate is expected; any other host's certificate and name are verified.
    """
    return host.lower().rstrip(".") in LOCAL_HOSTS


def tls_context(host: str) -> ssl.SSLContext:
    """The TLS client context for ``host`` (see :func:`accepts_self_signed`)."""
    import ssl

    if not accepts_self_signed(host):
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def content_length(head: bytes) -> int | None:
    """The Content-Length announced in an answer's head (status line and headers)."""
    match = _CONTENT_LENGTH.search(head + b"\r")
    return int(match.group(1)) if match else None


def read_answer(sock: socket.socket, deadline: float) -> bytes:
    """Read an HTTP answer until the server closes, or until Content-Length bytes arrived."""
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CheckError(NO_ANSWER)
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise CheckError(NO_ANSWER) from None
        if not chunk:
            return data
        data += chunk
        head, separator, body = data.partition(b"\r\n\r\n")
        length = content_length(head) if separator else None
        if length is not None and len(body) >= length:
            return data


def parse_answer(raw: bytes) -> tuple[int, bytes]:
    """Split a raw HTTP/1.x answer into (status, body); checks the announced length.

    (The agent asks in HTTP/1.0, to which a server may not answer in chunks.)
    """
    head, separator, body = raw.partition(b"\r\n\r\n")
    status = [*head.split(b"\r\n")[0].split(), b""]
    if not (separator and status[0].startswith(b"HTTP/") and status[1].isdigit()):
        raise CheckError("not an HTTP answer")
    length = content_length(head)
    if length is not None and len(body) < length:
        raise CheckError("truncated answer ({} of {} bytes)".format(len(body), length))
    return int(status[1]), body[:length]


def http_get(server: Server, path: str, token: str | None) -> tuple[int, bytes]:
    """GET ``path`` (relative to the base path) with HTTP/1.0; return (status, body).

    Raises OSError (connection, TLS, time-out) or CheckError (a broken answer).
    """
    lines = ["GET {}{} HTTP/1.0".format(server.base_path, path), "Host: " + server.netloc]
    lines += ["Accept: application/json", "User-Agent: " + PROGRAM, "Connection: close"]
    if token:
        lines.append("Authorization: token " + token)
    timeout = number_from_env("SAGESAVER_AGENT_REQUEST_TIMEOUT", REQUEST_TIMEOUT) or 1
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        if server.tls:
            sock = tls_context(server.host).wrap_socket(sock, server_hostname=server.host)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        return parse_answer(read_answer(sock, deadline))
    finally:
        sock.close()


def get_json(server: Server, path: str, token: str | None, missing_ok: bool = False) -> object:
    """The JSON document at ``path`` (None for a 404 when ``missing_ok``); CheckError if not.

    ``no_track_activity=1`` keeps the agent's own requests from counting as activity.
    """
    where = "Jupyter /" + path
    try:
        status, body = http_get(server, path + "?no_track_activity=1", token)
    except CheckError as error:
        raise CheckError("{}: {}".format(where, error)) from None
    except OSError as error:
        reason = str(error) or type(error).__name__
        raise CheckError("cannot reach Jupyter at {}: {}".format(server.netloc, reason)) from None
    if status == 404 and missing_ok:
        return None
    if status != 200:
        hint = ": not authorised (check --token)" if status in (401, 403) else ""
        raise CheckError("{} answered HTTP {}{}".format(where, status, hint))
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as error:
        raise CheckError("{} answered malformed JSON ({})".format(where, error)) from None


class Evidence:
    """Something seen active at ``at``; ``busy`` evidence (at = now) blocks idleness outright."""

    def __init__(self, at: datetime, what: str, busy: bool = False) -> None:
        self.at = at
        self.what = what
        self.busy = busy


def expect(value: object, kind: type, what: str) -> Any:
    """``value`` if it is a ``kind`` (dict or list), else CheckError: a wrong shape."""
    if isinstance(value, kind):
        return value
    found = "null" if value is None else "a " + type(value).__name__
    expected = "an object" if kind is dict else "a list"
    raise CheckError("Jupyter answered {} for {}, not {}".format(found, what, expected))


def _time_field(item: dict[str, object], key: str, what: str) -> datetime:
    value = item.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError("missing")
        return parse_timestamp(value)
    except ValueError as error:
        raise CheckError("Jupyter answered {} with a bad {}: {}".format(what, key, error)) from None


def kernel_evidence(
    value: object, where: str, now: datetime, options: argparse.Namespace
) -> tuple[str, list[Evidence]]:
    """A kernel model's id and what it shows (see the module docstring for the rules)."""
    kernel = expect(value, dict, where)
    kernel_id, name = kernel.get("id"), kernel.get("name")
    if not isinstance(kernel_id, str) or not kernel_id:
        raise CheckError("Jupyter answered {} without an id".format(where))
    label = "kernel " + kernel_id[:8]
    label += " ({})".format(name[:40]) if isinstance(name, str) and name else ""
    last_activity = _time_field(kernel, "last_activity", label)
    connections = kernel.get("connections", 0)
    if type(connections) is not int or connections < 0:
        raise CheckError("Jupyter answered {} with a bad connections count".format(label))
    state = kernel.get("execution_state")
    hours = options.max_busy_hours
    if state == "busy" and (now - last_activity).total_seconds() > hours * 3600:
        what = "{} busy with no output for over --max-busy-hours {:g} h (not counted as busy)"
        found = [Evidence(last_activity, what.format(label, hours))]
    elif state == "busy":
        found = [Evidence(now, label + " is busy", True)]
    elif isinstance(state, str) and state in NOT_BUSY_STATES:
        found = [Evidence(last_activity, "{} ({})".format(label, state))]
    else:
        what = "{} is in unknown execution state {} (counted as busy)"
        what = what.format(label, repr(state)[:40])
        found = [Evidence(now, what, True)]
    if connections and options.count_connections:
        what = "{} has {} open connection{} (--count-connections)"
        what = what.format(label, connections, "" if connections == 1 else "s")
        found.append(Evidence(now, what, True))
    return kernel_id, found


def jupyter_evidence(
    status: object,
    kernels: object,
    sessions: object,
    terminals: object,
    now: datetime,
    options: argparse.Namespace,
) -> list[Evidence]:
    """What the Jupyter answers show; CheckError when an answer has the wrong shape.

    ``terminals`` is None when the server has no terminals.
    """
    started = _time_field(expect(status, dict, "/api/status"), "started", "/api/status")
    found = [Evidence(started, "Jupyter server started")]
    seen = set()
    items = [("kernel #{}".format(i), k) for i, k in enumerate(expect(kernels, list, "kernels"))]
    for index, item in enumerate(expect(sessions, list, "/api/sessions")):
        session = expect(item, dict, "session #{}".format(index))
        label = session.get("path") or session.get("name") or session.get("id")
        where = "session " + (label[:80] if isinstance(label, str) else "#" + str(index))
        if "last_activity" in session:
            found.append(Evidence(_time_field(session, "last_activity", where), where))
        if session.get("kernel") is not None:
            items.append((where + " kernel", session["kernel"]))
    for where, item in items:
        kernel_id, shown = kernel_evidence(item, where, now, options)
        if kernel_id not in seen:
            seen.add(kernel_id)
            found.extend(shown)
    for index, item in enumerate(expect([] if terminals is None else terminals, list, "terminals")):
        terminal = expect(item, dict, "terminal #{}".format(index))
        name = terminal.get("name")
        label = "terminal {}".format(name if isinstance(name, (str, int)) else "#" + str(index))
        found.append(Evidence(_time_field(terminal, "last_activity", label), label))
    return found


def read_jupyter(options: argparse.Namespace, now: datetime) -> list[Evidence]:
    """Ask the Jupyter server about its kernels, sessions and terminals."""
    server, token = options.url, options.token
    status, kernels, sessions = (get_json(server, "api/" + path, token) for path in API)
    terminals = get_json(server, "api/terminals", token, missing_ok=True)
    if terminals is None:
        diagnose("Jupyter has no /api/terminals (terminals disabled): no terminal to watch")
    return jupyter_evidence(status, kernels, sessions, terminals, now, options)


# ------------------------------------------------------------------------------------- state


class CpuSample:
    """Cumulative counters (busy and total jiffies) of each CPU core, read at ``at``."""

    def __init__(self, cores: list[tuple[int, int]], at: datetime) -> None:
        self.cores = cores
        self.at = at


def fallback_state_file() -> str:
    """The state file in the user's state directory (XDG_STATE_HOME or ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
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


def load_state(path: str) -> tuple[Evidence | None, CpuSample | None, str | None]:
    """The latest activity and the CPU sample the previous run saved, and a problem, if any."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.loads(handle.read(1 << 20))
        if document.get("version") != STATE_VERSION:
            raise ValueError("not a version {} state".format(STATE_VERSION))
        last, cpu = document.get("last_activity"), document.get("cpu")
        latest = Evidence(parse_timestamp(last[0]), str(last[1])) if last else None
        cores = [(int(busy), int(total)) for busy, total in cpu[0]] if cpu else None
        sample = CpuSample(cores, parse_timestamp(cpu[1])) if cores else None
        return latest, sample, None
    except FileNotFoundError:
        return None, None, None
    except OSError as error:
        problem = "cannot be read ({})".format(error.strerror or error)
    except (ValueError, TypeError, AttributeError, LookupError) as error:
        problem = "is corrupt ({})".format(error)
    return None, None, "state file {} {}".format(path, problem)


def save_state(
    path: str,
    latest: Evidence | None,
    cpu: CpuSample | None,
    now: datetime,
    notice: dict[str, Any] | None = None,
) -> None:
    """Write the state atomically (a temporary file, then a rename). Raises OSError."""
    document = {
        "version": STATE_VERSION,
        "saved": format_time(now),
        "last_activity": [format_time(latest.at, True), latest.what] if latest else None,
        "cpu": [cpu.cores, format_time(cpu.at, True)] if cpu else None,
        "notice": {k: v if k == "file" else format_time(v, True) for k, v in notice.items()}
        if notice
        else None,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = "{}.{}.tmp".format(path, os.getpid())
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, indent=1) + "\n")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# ---------------------------------------------------------------------------------- CPU, GPU


def read_cpu_counters(path: str) -> list[tuple[int, int]]:
    """(busy, total) jiffies of each CPU core, from the ``cpuN`` lines of ``/proc/stat`` (the
    ``cpu`` line of all cores when there are none).

    Busy is user + nice + system + irq + softirq + steal; idle and iowait are not busy.
    """
    cores = []
    with open(path, "rb") as handle:
        for line in handle:  # the cpu lines come first
            fields = line[:4096].decode("ascii", "replace").split()
            if not fields or not fields[0].startswith("cpu"):
                break
            if len(fields) < 5:
                raise ValueError("short {} line".format(fields[0][:8]))
            values = [int(value) for value in fields[1:9]] + [0] * 8
            busy = sum(values[:3]) + sum(values[5:8])
            cores.append((fields[0], busy, busy + values[3] + values[4]))
    if not cores:
        raise ValueError("no 'cpu' lines")
    return [core[1:] for core in cores if core[0] != "cpu"] or [cores[0][1:]]


def cpu_usage(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> float | None:
    """Percent busy of the busiest core between two readings; None when they do not match
    (counters that went back: a reboot; another number of cores)."""
    if len(before) != len(after):
        return None
    usage = 0.0
    for (busy_before, total_before), (busy_after, total_after) in zip(before, after):  # noqa: B905 (3.7)
        busy, total = busy_after - busy_before, total_after - total_before
        if busy < 0 or total < 0:
            return None
        usage = max(usage, min(100.0, 100.0 * busy / total) if total else 0.0)
    return usage


def check_cpu(
    threshold: float, previous: CpuSample | None, now: datetime
) -> tuple[Evidence | None, CpuSample]:
    """Use of the busiest core since the previous sample (or over a short sample): evidence
    if at/above the threshold."""
    path = os.environ.get("SAGESAVER_AGENT_PROC_STAT") or "/proc/stat"
    try:
        current = read_cpu_counters(path)
        usage = None
        if previous is not None:
            usage = cpu_usage(previous.cores, current)
            span = "since the previous run at " + format_time(previous.at)
        if usage is None:
            seconds = number_from_env("SAGESAVER_AGENT_CPU_SAMPLE_SECONDS", 1.0)
            time.sleep(seconds)
            first, current = current, read_cpu_counters(path)
            usage = cpu_usage(first, current) or 0.0
            span = "over a {:g} s sample (no usable previous sample)".format(seconds)
    except (OSError, ValueError) as error:
        raise CheckError(
            "cannot read CPU use from {}: {}{}".format(path, error, CPU_HINT)
        ) from None
    sample = CpuSample(current, now)
    if usage < threshold:
        return None, sample
    what = "CPU use {:.1f}% on the busiest core {} >= --cpu-threshold {:g}%"
    return Evidence(now, what.format(usage, span, threshold), True), sample


def find_executable(name: str) -> str | None:
    """The first executable file ``name`` on PATH."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_command(command: list[str], timeout: float) -> str:
    """Run a command; its standard output, or CheckError saying why it failed."""
    import subprocess

    try:
        process = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            text=True,
        )
    except subprocess.TimeoutExpired:
        raise CheckError("no answer within {:g} s".format(timeout)) from None
    except (OSError, subprocess.SubprocessError) as error:
        raise CheckError(str(error)) from None
    if process.returncode != 0:
        lines = (process.stderr or process.stdout).strip().splitlines() or ["no message"]
        raise CheckError("exit {}: {}".format(process.returncode, lines[-1].strip()[:300]))
    return process.stdout


def check_gpu(threshold: float, now: datetime) -> Evidence | None:
    """Utilisation of the busiest GPU, when nvidia-smi is on PATH: evidence if at/above."""
    executable = find_executable("nvidia-smi")
    if executable is None:
        return None
    query = [executable, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
    try:
        output = run_command(query, COMMAND_TIMEOUT)
        values = [float(value) for value in output.split()]
        if not values or not all(0 <= value <= 100 for value in values):
            raise ValueError("no GPU utilisation in {!r}".format(output[:40]))
    except (CheckError, ValueError) as error:
        raise CheckError("nvidia-smi: {}{}".format(error, GPU_HINT)) from None
    if max(values) < threshold:
        return None
    what = "GPU use {:g}% >= --gpu-threshold {:g}%".format(max(values), threshold)
    return Evidence(now, what, True)


# ---------------------------------------------------------------------------------- keep-alive


def keep_alive_files(state_file: str) -> list[str]:
    """The keep-alive files to look at, in order."""
    home = os.environ.get("SAGESAVER_AGENT_HOME")
    homes = [home] if home else [os.path.expanduser("~"), NOTEBOOK_USER_HOME]
    paths = [os.path.join(os.path.dirname(os.path.abspath(state_file)), "keep-alive")]
    for directory in homes:
        path = os.path.join(directory, KEEP_ALIVE_IN_HOME)
        if path not in paths:
            paths.insert(-1, path)
    return paths


def read_small_file(path: str) -> bytes:
    """The first 4 KiB of ``path`` if it is a regular file; OSError if it is not.

    Opened non-blocking and checked before and after opening, so a FIFO, a device or a huge
    file never holds the agent up.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError("not a regular file")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError("not a regular file")
        return os.read(descriptor, 4096)
    finally:
        os.close(descriptor)


def check_keep_alive(paths: Sequence[str], now: datetime) -> tuple[list[str], list[str]]:
    """(holds, notes): why keep-alive files keep the instance up, and which have expired."""
    holds, notes = [], []
    for path in paths:
        try:
            until = parse_moment(read_small_file(path).decode("utf-8", "replace"))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            problem = "cannot be read ({})".format(error.strerror or error)
            holds.append("keep-alive file {} {}: keeping the instance up".format(path, problem))
            continue
        except ValueError:
            problem = "holds no time (ISO 8601 or epoch seconds)"
            holds.append("keep-alive file {} {}: keeping the instance up".format(path, problem))
            continue
        if until > now:
            holds.append(
                "keep-alive file {} holds the instance until {}".format(path, format_time(until))
            )
        else:
            notes.append("keep-alive file {} expired at {}".format(path, format_time(until)))
    return holds, notes


# ------------------------------------------------------------------------------------ notice


def load_notice(path: str) -> dict[str, Any] | None:
    """The stop the previous run announced (its file and times), or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            notice = json.loads(handle.read(1 << 20))["notice"]
        keys = ("file", "since", "at", "stop")
        return {k: notice[k] if k == "file" else parse_timestamp(notice[k]) for k in keys}
    except Exception:  # none, or one this run cannot use: a new notice is given
        return None


def give_notice(
    instance: str,
    latest: Evidence,
    limit: float,
    warn: float,
    directory: str,
    keep: str,
    now: datetime,
) -> dict[str, Any]:
    """Announce the stop: the notice file, a line to the terminals. The stop is planned no
    earlier than ``limit`` after the last activity, nor than ``warn`` seconds from now."""
    stop = max(latest.at + timedelta(seconds=limit), now + timedelta(seconds=warn))
    local = stop.astimezone()  # the instance's time zone
    path = os.path.join(directory, local.strftime("SAGESAVER-STOPS-AT-%H-%M.txt"))
    when = local.strftime("%Y-%m-%d %H:%M %Z (UTC%z)")
    since = latest.at.astimezone().strftime("%Y-%m-%d %H:%M")
    clear_notices(directory, None)
    try:  # a new file (the agent runs as root): never through a link the user left there
        text = NOTICE.format(instance, when, since, latest.what, limit / 60, keep)
        write_to(path, text, os.O_CREAT | os.O_EXCL)
    except OSError as error:
        diagnose("cannot write the stop notice {}: {}".format(path, error))
    warn_terminals("SageSaver stops this instance at {}; to keep it: touch {}".format(when, keep))
    return {"file": path, "since": latest.at, "at": now, "stop": stop}


def listdir(path: str) -> list[str]:
    """The names in directory ``path``; none if it cannot be read."""
    try:
        return os.listdir(path)
    except OSError:
        return []


def write_to(path: str, text: str, flags: int) -> None:
    """Write ``text`` (UTF-8) to ``path``, opened write-only with ``flags``. Raises OSError."""
    descriptor = os.open(path, os.O_WRONLY | flags, 0o644)
    try:
        os.write(descriptor, text.encode("utf-8", "replace"))
    finally:
        os.close(descriptor)


def warn_terminals(message: str) -> None:
    """Write ``message`` to every pseudo-terminal (Jupyter's terminals, SSH sessions): one
    that cannot be written is skipped, never an error."""
    base = os.path.join(os.environ.get("SAGESAVER_AGENT_DEV") or "/dev", "pts")
    for name in listdir(base):
        try:
            if name.isdigit():
                line = "\r\n{}\r\n".format(message)
                write_to(os.path.join(base, name), line, os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            pass


def clear_notices(directory: str, keep: str | None) -> None:
    """Remove the agent's notice files in ``directory``, all but ``keep``."""
    for name in listdir(directory):
        path = os.path.join(directory, name)
        if _NOTICE.match(name) and path != keep:
            try:
                os.unlink(path)
            except OSError as error:
                diagnose("cannot remove {}: {}".format(path, error))


# -------------------------------------------------------------------------------------- stop


def read_metadata(path: str) -> tuple[str, str | None]:
    """(notebook instance name, region or None) from SageMaker's resource metadata file."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.loads(handle.read(1 << 20))
        name = document.get("ResourceName")
        arn = str(document.get("ResourceArn") or "").split(":")
    except FileNotFoundError:
        problem = "is missing: cannot tell which notebook instance this is"
    except OSError as error:
        problem = "cannot be read ({})".format(error.strerror or error)
    except (ValueError, AttributeError):
        problem = "is not a JSON object"
    else:
        if isinstance(name, str) and _INSTANCE_NAME.match(name):
            region = arn[3] if len(arn) >= 6 and _REGION.match(arn[3]) else None
            environment = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            return name, region or environment or None
        problem = "has no valid ResourceName"
    raise CheckError("metadata file {} {}".format(path, problem))


def sagemaker_endpoint(region: str) -> str:
    """The SageMaker API URL: ``AWS_ENDPOINT_URL_SAGEMAKER`` or ``AWS_ENDPOINT_URL`` as boto3
    would take it (unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``), else the region's."""
    env = os.environ
    configured = env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true" and (
        env.get("AWS_ENDPOINT_URL_SAGEMAKER") or env.get("AWS_ENDPOINT_URL")
    )
    suffix = ".cn" if region.startswith("cn-") else ""
    return (configured or "https://api.sagemaker.{}.amazonaws.com{}".format(region, suffix)).rstrip(
        "/"
    ) + "/"


def fetch(url: str, data: bytes | None, headers: dict[str, str], method: str = "GET") -> bytes:
    """One HTTP request, no retry: the answer's body, or CheckError (status and AWS error).

    The instance metadata service is asked without a proxy, as the AWS SDKs do.
    """
    import urllib.request
    from urllib.error import HTTPError

    proxies: dict[str, str] | None = (
        {} if method != "POST" else None
    )  # only AWS API calls are POSTs
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler(proxies)).open(
            urllib.request.Request(url, data, headers, method=method), timeout=AWS_TIMEOUT
        ) as answer:
            return bytes(answer.read(1 << 20))
    except HTTPError as error:
        text = error.read(2048).decode("utf-8", "replace")
        try:
            found = json.loads(text)
            text = "{}: {}".format(found["__type"].split("#")[-1], found.get("message"))
        except (ValueError, LookupError, TypeError, AttributeError):
            pass
        raise CheckError("HTTP {} {}".format(error.code, " ".join(text.split())[:300])) from None
    except (OSError, ValueError) as error:
        raise CheckError(str(getattr(error, "reason", error))) from None


def imds_url() -> str:
    """The instance metadata service (``SAGESAVER_AGENT_IMDS_URL`` in tests)."""
    return (os.environ.get("SAGESAVER_AGENT_IMDS_URL") or IMDS_URL).rstrip("/") + "/latest/"


def aws_credentials(now: datetime) -> tuple[str, str, str | None]:
    """(access key id, secret key, session token): from the environment, else from the
    instance role through IMDSv2 (refused once past their ``Expiration``)."""
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN")
    base = imds_url()
    try:
        token = fetch(base + "api/token", b"", {IMDS_TTL: "300"}, "PUT").decode()
        headers = {"X-aws-ec2-metadata-token": token}
        path = base + "meta-data/iam/security-credentials/"
        role = (fetch(path, None, headers).decode().split() or ["(none)"])[0]
        found = json.loads(fetch(path + role, None, headers).decode())
        keys = found["AccessKeyId"], found["SecretAccessKey"], found["Token"]
        expires = parse_timestamp(found["Expiration"])
    except (CheckError, ValueError, LookupError, TypeError, AttributeError) as error:
        raise CheckError("no credentials from IMDS: {}".format(error)) from None
    if expires <= now:
        raise CheckError("instance role credentials expired at " + format_time(expires))
    return keys


def sign(
    url: str,
    region: str,
    target: str,
    body: bytes,
    keys: tuple[str, str, str | None],
    moment: datetime,
) -> dict[str, str]:
    """The headers of a SageMaker JSON 1.1 POST to ``url``, signed with AWS Signature V4."""
    import hashlib
    import hmac

    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = "{}/{}/sagemaker/aws4_request".format(stamp[:8], region)
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": url.split("/")[2],
        "x-amz-date": stamp,
        "x-amz-target": "SageMaker." + target,
    }
    if keys[2]:
        headers["x-amz-security-token"] = keys[2]
    names = sorted(headers)
    lines = ["POST", "/" + url.split("/", 3)[3], ""] + [k + ":" + headers[k] for k in names]
    lines += ["", ";".join(names), hashlib.sha256(body).hexdigest()]
    key = ("AWS4" + keys[1]).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), "sha256").digest()
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    text = "\n".join(("AWS4-HMAC-SHA256", stamp, scope, digest))
    headers["authorization"] = (
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}".format(
            keys[0], scope, ";".join(names), hmac.new(key, text.encode(), "sha256").hexdigest()
        )
    )
    return headers


def call_sagemaker(region: str, target: str, name: str, keys: tuple[str, str, str | None]) -> Any:
    """One signed SageMaker request about notebook instance ``name``: its JSON answer."""
    url = sagemaker_endpoint(region)
    body = json.dumps({"NotebookInstanceName": name}).encode()
    headers = sign(url, region, target, body, keys, datetime.now(UTC))
    return json.loads(fetch(url, body, headers, "POST").decode() or "{}")


def stop_instance(name: str, region: str | None, now: datetime) -> tuple[str, str, bool]:
    """Stop the notebook instance if it is InService: (action, reason, succeeded).

    One ``DescribeNotebookInstance`` and one ``StopNotebookInstance`` request; no retry (the
    next cron run is the retry).
    """
    step = "DescribeNotebookInstance"
    try:
        if not region:
            raise CheckError("no region (not in the ARN, AWS_REGION or AWS_DEFAULT_REGION)")
        keys = aws_credentials(now)
        status = call_sagemaker(region, step, name, keys).get(STATUS)
        if status != "InService":
            return "none", "notebook instance {} is {}, not InService".format(name, status), True
        step = "StopNotebookInstance"
        call_sagemaker(region, step, name, keys)
    except Exception as error:
        return "none", "{} {} failed: {}".format(step, name, error), False
    return "stop", "stopped notebook instance {} ({} accepted)".format(name, step), True


# -------------------------------------------------------------------------------------- a run


def observe(
    options: argparse.Namespace, cpu: CpuSample | None, now: datetime
) -> tuple[list[Evidence], list[str], CpuSample | None]:
    """Ask Jupyter, sample CPU and GPU: (evidence of activity, failed checks, new CPU sample)."""
    evidence: list[Evidence] = []
    errors: list[str] = []
    sample = None
    try:
        evidence += read_jupyter(options, now)
    except CheckError as error:
        errors.append(str(error))
    try:
        if options.cpu_threshold > 0:
            found, sample = check_cpu(options.cpu_threshold, cpu, now)
            evidence += [found] if found else []
    except CheckError as error:
        errors.append(str(error))
    try:
        found = check_gpu(options.gpu_threshold, now) if options.gpu_threshold > 0 else None
        evidence += [found] if found else []
    except CheckError as error:
        errors.append(str(error))
    return evidence, errors, sample


def explain_idle_time(latest: Evidence, idle_seconds: float, limit: float) -> str:
    """The reason that says how long the instance has been idle, and since what."""
    template = (
        "no activity for {} s (--time {} s); last: {} at {}"
        if idle_seconds >= limit
        else "last activity {} s ago, less than --time {} s: {} at {}"
    )
    seconds = format_seconds(round(idle_seconds))
    return template.format(seconds, format_seconds(limit), latest.what, format_time(latest.at))


def run(options: argparse.Namespace, now: datetime) -> tuple[dict[str, object], int]:
    """One pass: look, decide, remember, act. Returns (the JSON result, the exit code)."""
    limit: float = options.time
    state_file: str = options.state_file or choose_state_file(
        [DEFAULT_STATE_FILE, fallback_state_file()]
    )
    remembered, cpu, state_problem = load_state(state_file)
    evidence, problems, cpu = observe(options, cpu, now)
    evidence += [remembered] if remembered else []
    if state_problem:  # recovered from (the file is rewritten): not a failure
        diagnose(state_problem)
        evidence.append(Evidence(now, state_problem + ": counted as activity now", True))
    files = keep_alive_files(state_file)
    holds, notes = check_keep_alive(files, now)
    notice = load_notice(state_file)
    for path in files:
        try:
            touched = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
        except (OSError, ValueError, OverflowError):
            continue
        if notice and touched > notice["at"]:  # touched after the notice: the stop is off
            evidence.append(Evidence(touched, "keep-alive file {} touched".format(path)))
    newest = None  # the first of the latest (no lambda: the shipped copy is compacted)
    for item in evidence:
        newest = item if newest is None or item.at > newest.at else newest
    latest = Evidence(min(newest.at, now), newest.what) if newest else None  # future = now
    idle_seconds = (now - latest.at).total_seconds() if latest else 0.0
    busy = [item.what for item in evidence if item.busy]
    idle = bool(latest) and idle_seconds >= limit and not (problems or busy or holds)
    reasons = problems + busy + holds
    if latest and not (problems or busy):
        reasons.append(explain_idle_time(latest, idle_seconds, limit))
    reasons += notes
    action, instance = "none", None
    try:
        instance, region = read_metadata(options.metadata_file)
    except CheckError as error:
        problems.append(str(error))
        reasons.append(str(error))
    warn = min(options.warn_minutes * 60, limit)
    keep = files[-2]  # the notebook user's (~ec2-user/SageMaker/...): see keep_alive_files
    directory = options.notice_dir or os.path.dirname(keep)
    if instance and not (problems or options.dry_run):  # else the notice stays as it is
        if not (latest and warn and idle_seconds >= limit - warn) or busy or holds:
            notice = None  # used again, or not idle for long enough
        elif notice is None or notice["since"] != latest.at:
            notice = give_notice(instance, latest, limit, warn, directory, keep, now)
        clear_notices(directory, notice["file"] if notice else None)
    waiting = bool(notice and not options.dry_run and now < notice["stop"])
    if notice and waiting:
        reasons.append(
            "stop notice {}: stopping at {} if still idle".format(
                notice["file"], format_time(notice["stop"])
            )
        )
    try:
        save_state(state_file, latest, cpu, now, notice)
    except OSError as error:
        problems.append("cannot save the state file {}: {}".format(state_file, error))
        reasons.append(problems[-1])
    if instance and not waiting:
        if idle and options.dry_run:
            action = "would-stop"
            reasons.append("--dry-run: would stop notebook instance " + instance)
        elif idle:
            diagnose("idle for {} s: stopping {}".format(round(idle_seconds), instance))
            action, outcome, succeeded = stop_instance(instance, region, now)
            reasons.append(outcome)
            if succeeded:
                diagnose(outcome)
                clear_notices(directory, None)
            else:
                problems.append(outcome)
    for problem in problems:
        diagnose(problem)
    result: dict[str, object] = {
        "idle": idle,
        "idle_seconds": round(idle_seconds, 1),
        "action": action,
        "reasons": [redact(reason) for reason in reasons],
        "instance": instance,
    }
    return result, 1 if problems else 0


# --------------------------------------------------------------------------------- the command


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    """The checked options; a bad one ends the program (exit 2, argparse style)."""
    parser = argparse.ArgumentParser(
        prog="autostop.py", description="Stop this notebook instance once idle for --time s."
    )
    add = parser.add_argument
    add("--time", type=float, required=True, metavar="SECONDS")
    add("--url", default=DEFAULT_URL, help="Jupyter server (%(default)s)")
    add("--token", default=os.environ.get("JUPYTER_TOKEN"), help="default: $JUPYTER_TOKEN")
    add("--count-connections", action="store_true", help="open connections count as use")
    add("--ignore-connections", action="store_true", help="the default; kept for old entries")
    add("--max-busy-hours", type=float, default=24.0, metavar="H", help="24 (see the docs)")
    add("--cpu-threshold", type=float, default=10.0, metavar="%", help="10; 0: no CPU check")
    add("--gpu-threshold", type=float, default=10.0, metavar="%", help="10; 0: no GPU check")
    add("--state-file", metavar="PATH", help="default " + DEFAULT_STATE_FILE)
    add("--metadata-file", metavar="PATH", default=DEFAULT_METADATA_FILE, help="%(default)s")
    add("--dry-run", action="store_true", help='report "would-stop", do not stop')
    add("--warn-minutes", type=float, default=10.0, metavar="N", help="10; 0: no notice")
    add("--notice-dir", metavar="DIR")
    options = parser.parse_args(argv)
    if not 0 <= options.warn_minutes <= 1440:
        parser.error("argument --warn-minutes: must be between 0 and 1440")
    for name in ("time", "max_busy_hours"):
        if not (getattr(options, name) > 0 and math.isfinite(getattr(options, name))):
            parser.error("argument --{}: must be more than 0".format(name.replace("_", "-")))
    for name in ("cpu", "gpu"):
        if not 0 <= getattr(options, name + "_threshold") <= 100:
            parser.error("argument --{}-threshold: must be between 0 and 100".format(name))
    if any(character.isspace() or ord(character) < 32 for character in options.token or ""):
        parser.error("argument --token: must not contain spaces or control characters")
    try:
        options.url = Server(options.url)
    except ValueError as error:
        parser.error("argument --url: {}".format(error))
    try:
        current_time()
    except ValueError as error:
        parser.error(str(error))
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run once; print the JSON result; return the exit code."""
    options = parse_options(argv)
    _secrets.extend([options.token] if options.token else [])
    try:
        result, code = run(options, current_time())
    except Exception as error:  # a bug must not go unnoticed, nor stop the instance
        problem = redact("internal error: {}: {}".format(type(error).__name__, error))
        diagnose(problem)
        result = {
            "idle": False,
            "idle_seconds": 0,
            "action": "none",
            "reasons": [problem],
            "instance": None,
        }
        code = 1
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
