"""DOT to SVG or PNG through Graphviz's ``dot`` program, the one part of the graph that runs one.

Graphviz lays out graphs better than anything small we could write, and every platform packages
it; DOT text itself needs nothing (``formae graph -o dot``). When ``dot`` is missing the error
says how to install it.
"""

from __future__ import annotations

import shutil
import subprocess

from formae.graph.options import Format

RENDER_TIMEOUT = 120.0
"""Seconds ``dot`` may take: a few for thousands of boxes; a hung one must not hang the CLI."""


class RenderError(Exception):
    """``dot`` is missing, failed or took too long; the message says which, and what to do."""


INSTALL_HINT = (
    "Graphviz's `dot` is not on PATH: -o svg and -o png need it "
    "(Debian/Ubuntu: apt-get install graphviz; Fedora: dnf install graphviz; macOS: brew install graphviz); "
    "-o dot writes the graph without it"
)


def render(dot_text: str, fmt: Format, program: str = "dot") -> bytes:
    """The graph in ``fmt``: the DOT text itself, or what ``dot -T<fmt>`` makes of it."""
    if fmt is Format.DOT:
        return dot_text.encode()
    executable = shutil.which(program)
    if executable is None:
        raise RenderError(INSTALL_HINT)
    try:
        done = subprocess.run(
            [executable, f"-T{fmt}"],
            input=dot_text.encode(),
            capture_output=True,
            timeout=RENDER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"{program} took more than {RENDER_TIMEOUT:.0f} s to lay the graph out") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise RenderError(f"{program} -T{fmt} failed (exit {done.returncode}): {detail}")
    return done.stdout
