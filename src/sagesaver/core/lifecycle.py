# ruff: noqa: E501 -- the shell script template below keeps its natural line lengths
"""Lifecycle configurations that install the auto-stop agent, offline.

:func:`render_on_start` builds the ``on-start`` script: it writes the agent inline (compressed,
so no network access is ever needed), picks a Python that can run it, installs exactly one cron
entry however often the instance restarts, and logs to ``/var/log/sagesaver-autostop.log``.
The SageMaker API takes the script base64-encoded, at most 16,384 characters: the agent is
shipped without comments and docstrings (the code itself is unchanged) and xz-compressed.

Pure: no AWS. :mod:`sagesaver.aws.lifecycle` creates, updates and attaches configurations.
"""

from __future__ import annotations

import ast
import base64
import builtins
import fnmatch
import io
import itertools
import keyword
import lzma
import re
import shlex
import string
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

from sagesaver.core.errors import InputError
from sagesaver.core.model import Resource
from sagesaver.core.policy import FALSE_VALUES

MAX_CONTENT_CHARS = 16384
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
CRON_MARKER = "# sagesaver-autostop"
LOG_FILE = "/var/log/sagesaver-autostop.log"
AGENT_DIR = "/opt/sagesaver"
# The notebook server's own Python first (it has the most modules), then the system one.
PYTHON_CANDIDATES = (
    "/home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/python",
    "/usr/bin/python3",
)


def check_name(name: str) -> str:
    """A lifecycle configuration name: letters, digits and '-', 1-63, not starting with '-'."""
    if not NAME_RE.match(name):
        raise InputError(
            f"lifecycle configuration name {name!r}: use letters, digits and '-', "
            "1 to 63 characters, not starting with '-'"
        )
    return name


@dataclass(frozen=True)
class AgentOptions:
    """The agent's command-line options as the cron entry passes them."""

    idle_time: int = 3600
    count_connections: bool = False  # open browser connections alone do not keep it up
    cpu_threshold: float = 10.0
    gpu_threshold: float = 10.0
    interval_minutes: int = 5
    jupyter_url: str | None = None
    metadata_file: str | None = None
    max_busy_hours: float = 24.0
    warn_minutes: int = 10  # the notice before a stop (0: none)

    def validate(self) -> AgentOptions:
        """Raise :class:`InputError` for out-of-range values."""
        if self.idle_time <= 0:
            raise InputError(f"--idle-time {self.idle_time}: must be more than 0 seconds")
        for label, value in (
            ("--cpu-threshold", self.cpu_threshold),
            ("--gpu-threshold", self.gpu_threshold),
        ):
            if not 0 <= value <= 100:
                raise InputError(f"{label} {value:g}: must be a percentage from 0 to 100")
        if not 1 <= self.interval_minutes <= 59:
            raise InputError(f"--interval-minutes {self.interval_minutes}: must be from 1 to 59")
        if not 0 < self.max_busy_hours < float("inf"):
            raise InputError(f"--max-busy-hours {self.max_busy_hours:g}: must be more than 0")
        if not 0 <= self.warn_minutes <= 1440:
            raise InputError(
                f"--warn-minutes {self.warn_minutes}: must be from 0 (no notice) to 1440 (a day)"
            )
        for label, text in (
            ("--jupyter-url", self.jupyter_url),
            ("--metadata-file", self.metadata_file),
        ):
            # A newline would end the cron entry; other characters reach it exactly (quoted).
            if text is not None and any(ord(c) < 32 or ord(c) == 127 for c in text):
                raise InputError(f"{label}: must not contain control characters (newlines)")
        return self

    def arguments(self) -> list[str]:
        """The agent arguments, in order."""
        args = [
            "--time",
            str(self.idle_time),
            "--cpu-threshold",
            f"{self.cpu_threshold:g}",
            "--gpu-threshold",
            f"{self.gpu_threshold:g}",
        ]
        if self.count_connections:
            args.append("--count-connections")
        if self.max_busy_hours != 24:
            args += ["--max-busy-hours", f"{self.max_busy_hours:g}"]
        if self.warn_minutes != 10:
            args += ["--warn-minutes", str(self.warn_minutes)]
        if self.jupyter_url:
            args += ["--url", self.jupyter_url]
        if self.metadata_file:
            args += ["--metadata-file", self.metadata_file]
        return args


def agent_source() -> str:
    """The agent's source file as shipped in the package."""
    return resources.files("sagesaver").joinpath("agent/autostop.py").read_text(encoding="utf-8")


class _Shrink(ast.NodeTransformer):
    """Drops docstrings and type annotations: what the program does stays the same."""

    def _strip_docstring(
        self, node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    ) -> None:
        first = node.body[0] if node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            node.body = node.body[1:]

    def visit_Module(self, node: ast.Module) -> ast.AST:
        self._strip_docstring(node)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._strip_docstring(node)
        return self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        self._strip_docstring(node)
        node.returns = None
        arguments = node.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            arg.annotation = None
        for star in (arguments.vararg, arguments.kwarg):
            if star is not None:
                star.annotation = None
        return self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        if node.value is None:
            return None  # a bare declaration does nothing at run time
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)


def _fill_empty_bodies(tree: ast.AST) -> None:
    """A block left empty by the stripping gets a ``pass``."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and not body:
            body.append(ast.Pass())


def _short_names(taken: set[str]) -> Iterator[str]:
    """``a``, ``b``, ... ``aa``, ``ab``, ...: names not in ``taken`` and not keywords."""
    for size in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=size):
            name = "".join(letters)
            if name not in taken and not keyword.iskeyword(name):
                yield name


def _rename_locals(tree: ast.Module) -> None:
    """Give the local variables and parameters of each function one-letter names.

    Written here rather than taken from python-minifier: measured on this agent (2026-12),
    python-minifier 3.4 packs to 10,559 characters against 10,369 with this pass, and the
    script must stay 500 characters under the API's 16,384 limit with every option.

    Only where it cannot change what the program does: functions without nested functions,
    lambdas, classes, ``global`` or ``nonlocal``; never a name the module or the builtins
    define (a comprehension may read a global), never a parameter some call passes by keyword,
    never a name a default value reads (defaults are evaluated outside the function).
    """
    everywhere = [node for node in ast.walk(tree)]
    used = {node.id for node in everywhere if isinstance(node, ast.Name)} | set(dir(builtins))
    used |= {node.arg for node in everywhere if isinstance(node, ast.arg)}
    module: set[str] = set()  # what the module (at its top level) defines or reads
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            module.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            module.update((a.asname or a.name).split(".")[0] for a in statement.names)
        else:
            module.update(n.id for n in ast.walk(statement) if isinstance(n, ast.Name))
    module |= set(dir(builtins))
    by_keyword = {node.arg for node in everywhere if isinstance(node, ast.keyword) and node.arg}
    nested = (
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.Lambda,
        ast.ClassDef,
        ast.Global,
        ast.Nonlocal,
    )
    for function in [node for node in everywhere if isinstance(node, ast.FunctionDef)]:
        defaults = [*function.args.defaults, *(d for d in function.args.kw_defaults if d)]
        outside = {id(n) for d in defaults for n in ast.walk(d)}
        inner = [n for n in ast.walk(function) if n is not function and id(n) not in outside]
        if any(isinstance(node, nested) for node in inner):
            continue
        read_outside = {n.id for d in defaults for n in ast.walk(d) if isinstance(n, ast.Name)}
        params = [node.arg for node in inner if isinstance(node, ast.arg)]
        stored = [n.id for n in inner if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        stored += [n.name for n in inner if isinstance(n, ast.ExceptHandler) and n.name]
        candidates = [name for name in params if name not in by_keyword]
        candidates += [name for name in stored if name not in params]
        names = [
            name
            for name in dict.fromkeys(candidates)
            if len(name) > 1 and name not in module and name not in read_outside
        ]
        mapping = dict(zip(names, _short_names(used | module), strict=False))
        for node in inner:
            if isinstance(node, ast.Name) and node.id in mapping:
                node.id = mapping[node.id]
            elif isinstance(node, ast.arg) and node.arg in mapping:
                node.arg = mapping[node.arg]
            elif isinstance(node, ast.ExceptHandler) and node.name in mapping:
                node.name = mapping[node.name]


def _rename_globals(tree: ast.Module) -> None:
    """Give the module's own functions, classes and constants short upper-case names.

    Only names the module defines at its top level (never an import, never ``main``) and only
    where no parameter, keyword argument or ``except ... as`` uses the same name (a local of
    that name is renamed with it, consistently). Methods and attributes keep their names: only
    ``Name`` nodes and the top-level definitions change.
    """
    everywhere = list(ast.walk(tree))
    used = {node.id for node in everywhere if isinstance(node, ast.Name)} | set(dir(builtins))
    blocked = {n.arg for n in everywhere if isinstance(n, (ast.arg, ast.keyword)) and n.arg}
    blocked |= {n.name for n in everywhere if isinstance(n, ast.ExceptHandler) and n.name}
    blocked |= {"main", "TYPE_CHECKING"}
    defined = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            defined.append(statement.name)
        elif isinstance(statement, ast.Assign):
            defined += [t.id for t in statement.targets if isinstance(t, ast.Name)]
    short = (n.upper() for n in _short_names({n.lower() for n in used | blocked}))
    names = [n for n in dict.fromkeys(defined) if n not in blocked and not n.startswith("__")]
    mapping = dict(zip(names, short, strict=False))
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            statement.name = mapping.get(statement.name, statement.name)
    for node in everywhere:
        if isinstance(node, ast.Name) and node.id in mapping:
            node.id = mapping[node.id]


def _is_literal(node: ast.expr) -> bool:
    """Whether ``node`` is a plain literal (no call, no name: evaluating it does nothing)."""
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def _drop_unread_constants(tree: ast.Module) -> None:
    """Drop the module's constants that nothing reads (kept in the source for tests and docs,
    e.g. the IAM actions the agent needs): only ``NAME = literal`` at the top level."""
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    tree.body = [
        statement
        for statement in tree.body
        if not (
            isinstance(statement, ast.Assign)
            and all(isinstance(t, ast.Name) and t.id not in read for t in statement.targets)
            and _is_literal(statement.value)
        )
    ]


def squeeze(code: str) -> str:
    """``code`` without the spaces next to operators and punctuation (``a = f(x, y)`` becomes
    ``a=f(x,y)``); the code itself if that would change any statement (checked)."""
    lines = code.splitlines(keepends=True)
    squeezed: list[str] = []
    previous = None
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        text = lines[token.start[0] - 1]
        if token.type == tokenize.NL and not text.strip():
            continue  # a blank line
        if previous is not None and previous.end[0] == token.start[0]:
            gap = text[previous.end[1] : token.start[1]]
            operator = tokenize.OP in (previous.type, token.type)
            squeezed.append("" if operator and not gap.strip() else gap)
        else:
            squeezed.append(text[: token.start[1]])  # the indentation
        squeezed.append(token.string)
        previous = token
    result = "".join(squeezed)
    try:
        same = ast.dump(ast.parse(result)) == ast.dump(ast.parse(code))
    except SyntaxError:
        same = False
    return result if same else code


def shrink(tree: ast.Module) -> ast.Module:
    """``tree`` without docstrings, annotations, the ``if TYPE_CHECKING:`` block and with short
    names for the module's own definitions (see :func:`_rename_globals`) and for locals (see
    :func:`_rename_locals`); a copy is not made: it is changed."""
    shrunk = _Shrink().visit(tree)
    if not isinstance(shrunk, ast.Module):  # a transformer returns a module for a module
        raise TypeError("shrinking the agent did not give a module")
    shrunk.body = [
        statement
        for statement in shrunk.body
        if not (
            isinstance(statement, ast.If)
            and isinstance(statement.test, ast.Name)
            and statement.test.id == "TYPE_CHECKING"
        )
        # With the annotations gone, postponed annotations are not needed.
        and not (isinstance(statement, ast.ImportFrom) and statement.module == "__future__")
    ]
    _drop_unread_constants(shrunk)
    _fill_empty_bodies(shrunk)
    _rename_globals(shrunk)
    _rename_locals(shrunk)
    return ast.fix_missing_locations(shrunk)


def compact_source(source: str) -> str:
    """``source`` without comments, docstrings, annotations and blank lines.

    The result is checked to parse as Python 3.7 (what the agent must run on); the tests check
    it is the same program, statement for statement.
    """
    code = ast.unparse(shrink(ast.parse(source))) + "\n"
    # One space per indentation level (ast.unparse writes each statement on one line).
    code = re.sub(r"^(?:    )+", lambda m: " " * (len(m.group()) // 4), code, flags=re.M)
    code = squeeze(code)
    ast.parse(code, feature_version=(3, 7))
    return code


def pack(source: str) -> str:
    """LZMA-compressed (the lean ``.lzma`` container, tuned for text; ``lzma.decompress``
    detects it) and base85-encoded (denser than base64), on one line: each line break would
    cost a byte of the API's limit, and bash reads a long line as well."""
    lzma1 = {"id": lzma.FILTER_LZMA1, "preset": 9 | lzma.PRESET_EXTREME, "lc": 3, "pb": 0}
    packed = lzma.compress(source.encode("utf-8"), format=lzma.FORMAT_ALONE, filters=[lzma1])
    return base64.b85encode(packed).decode("ascii")


def unpack(text: str) -> str:
    """The inverse of :func:`pack` (what the on-start script does with the shipped agent)."""
    return lzma.decompress(base64.b85decode("".join(text.split()))).decode("utf-8")


def cron_arguments(options: AgentOptions) -> str:
    """The agent's arguments as bash writes them into the cron entry, each value exact.

    Each argument is single-quoted for the ``sh`` that cron starts (no ``$``, backtick or
    ``"`` is interpreted) and ``%`` becomes ``\\%`` (cron turns a bare ``%`` into a newline).
    The result is single-quoted once more for bash, which assigns it to ``ENTRY`` untouched.
    """
    cron = " ".join(shlex.quote(a) for a in options.arguments()).replace("%", "\\%")
    return shlex.quote(f" {cron} ")


def render_on_start(options: AgentOptions) -> str:
    """The ``on-start`` script that installs the agent and its cron entry."""
    options.validate()
    packed = pack(compact_source(agent_source()))
    candidates = " ".join(shlex.quote(p) for p in PYTHON_CANDIDATES)
    arguments = cron_arguments(options)
    return f"""#!/bin/bash
# SageSaver auto-stop agent and its cron entry, offline
set -eu
DIR="${{SAGESAVER_AGENT_DIR:-{AGENT_DIR}}}"
LOG="${{SAGESAVER_LOG_FILE:-{LOG_FILE}}}"
PY=""
for c in ${{SAGESAVER_PYTHON:-}} {candidates}; do
  if [ -x "$c" ] && "$c" -c 'import sys,lzma;sys.exit(sys.version_info<(3,7))' 2>/dev/null; then
    PY="$c"; break
  fi
done
if [ -z "$PY" ]; then echo "sagesaver: no Python 3.7+ found; auto-stop not installed" >&2; exit 0; fi
mkdir -p "$DIR"
"$PY" -c 'import base64,lzma,sys;sys.stdout.buffer.write(lzma.decompress(base64.b85decode(input())))' > "$DIR/autostop.py.new" <<'AGENT'
{packed}
AGENT
mv "$DIR/autostop.py.new" "$DIR/autostop.py"
touch "$LOG"
ENTRY="*/{options.interval_minutes} * * * * $PY $DIR/autostop.py"{arguments}"--state-file $DIR/state.json >> $LOG 2>&1 {CRON_MARKER}"
KEEP="$(crontab -l 2>/dev/null | grep -vF '{CRON_MARKER}' || true)"
{{ if [ -n "$KEEP" ]; then printf '%s\n' "$KEEP"; fi; echo "$ENTRY"; }} | crontab -
echo "sagesaver: auto-stop installed ($PY)"
"""


def encoded_content(script: str) -> str:
    """The script as the API wants it (base64); raises if it exceeds the API's limit."""
    content = base64.b64encode(script.encode("utf-8")).decode("ascii")
    if len(content) > MAX_CONTENT_CHARS:
        raise InputError(
            f"the on-start script is {len(content)} base64 characters; "
            f"the API accepts at most {MAX_CONTENT_CHARS}"
        )
    return content


def parse_tag_filters(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict; raises :class:`InputError` for a malformed one."""
    filters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--attach-tag {pair!r}: use KEY=VALUE")
        filters[key.strip()] = value.strip()
    return filters


@dataclass(frozen=True)
class AttachPlan:
    """An instance selected by ``--attach``/``--attach-tag`` and what to do with it."""

    instance: Resource
    action: str  # "attach", "restart-and-attach", "skip"
    reason: str


def plan_attach(
    instances: list[Resource],
    globs: list[str],
    tag_filters: dict[str, str],
    config: str,
    restart: bool,
    protect_tag: str,
) -> list[AttachPlan]:
    """Which instances get the configuration, and how. Instances no option selects are left out."""
    if not globs and not tag_filters:
        return []
    plans = []
    for instance in instances:
        if globs and not any(fnmatch.fnmatchcase(instance.name, g) for g in globs):
            continue
        if any(instance.tags.get(k) != v for k, v in tag_filters.items()):
            continue
        value = instance.tags.get(protect_tag)
        if value is not None and value.strip().lower() not in FALSE_VALUES:
            plans.append(AttachPlan(instance, "skip", f"protected by tag {protect_tag}"))
        elif instance.lifecycle_config == config:
            plans.append(AttachPlan(instance, "skip", f"already has {config}"))
        elif instance.status == "Stopped":
            plans.append(AttachPlan(instance, "attach", "stopped: attach directly"))
        elif instance.status == "InService" and restart:
            plans.append(
                AttachPlan(instance, "restart-and-attach", "InService: stop, attach, start")
            )
        elif instance.status == "InService":
            plans.append(
                AttachPlan(instance, "skip", "InService: use --restart, or attach when stopped")
            )
        else:
            plans.append(AttachPlan(instance, "skip", f"state is {instance.status}"))
    return plans
