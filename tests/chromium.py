"""Headless Chromium for tests (installed with apt-get when missing) and a tiny DOM parser."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT = 90


class ChromiumUnavailable(RuntimeError):
    """Chromium is missing and could not be installed."""


def ensure_chromium() -> tuple[str, float]:
    """The path of ``chromium``, installing Debian's package first if needed; and install time."""
    found = shutil.which("chromium")
    if found:
        return found, 0.0
    started = time.monotonic()
    command = "apt-get update -qq && apt-get install -y -qq chromium"
    try:
        done = subprocess.run(
            ["sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ChromiumUnavailable(f"could not run `{command}`: {exc}") from exc
    found = shutil.which("chromium")
    if done.returncode != 0 or not found:
        raise ChromiumUnavailable(
            f"`{command}` failed (exit {done.returncode}); chromium is required for the HTML "
            f"report tests.\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-2000:]}"
        )
    return found, time.monotonic() - started


@dataclass
class Chromium:
    """Runs the headless browser on local files."""

    binary: str
    profile: Path

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *FLAGS, f"--user-data-dir={self.profile}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert done.returncode == 0, f"{command} failed:\n{done.stderr[-3000:]}"
        return done

    def dump_dom(self, page: Path) -> str:
        """The DOM after parsing, serialised by the browser."""
        return self._run("--dump-dom", page.resolve().as_uri()).stdout

    def screenshot(
        self, page: Path, png: Path, size: str = "1280,2000", dark: bool = False
    ) -> Path:
        """A PNG screenshot of ``page`` (with ``prefers-color-scheme: dark`` when ``dark``)."""
        png.parent.mkdir(parents=True, exist_ok=True)
        scheme = ["--blink-settings=preferredColorScheme=0"] if dark else []
        self._run(
            *scheme,
            f"--screenshot={png.resolve()}",
            f"--window-size={size}",
            page.resolve().as_uri(),
        )
        return png


# --------------------------------------------------------------------------- a tiny DOM

VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


@dataclass
class Node:
    """An element: tag, attributes, children (elements and text)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)

    def elements(self) -> Iterator[Node]:
        """This element and every element below it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.elements()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        """Elements with ``tag`` (any when None) and these attribute values ('_' for '-')."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            n
            for n in self.elements()
            if (tag is None or n.tag == tag) and all(n.attrs.get(k) == v for k, v in wanted.items())
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag}> with {attrs}"
        return found[0]

    def text(self) -> str:
        """The concatenated text below this element, whitespace collapsed."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Node:
    """The document tree of ``html``."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
