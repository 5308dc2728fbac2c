"""The demo's one command line: ``python -m workbench.demo <command> [options]``.

Commands:

    server    the OpenAI-compatible demo model server, with latency and faults
    app       the demo support-triage app over HTTP (a model server child unless --model-url)
    workload  golden tickets through the app in-process for a fixed time (a profile target)
    traffic   realistic traced traffic through the app, to an OTLP JSON lines file or OTLP/HTTP

Each command's module adds its options (``add_arguments``) and runs them (``command``).
Only the chosen command's module is imported: the model server starts without the app's
imports, and a profiled workload carries none of the others'.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

# command -> (module, one-line description)
COMMANDS = {
    "server": (
        "workbench.demo.server",
        "OpenAI-compatible demo chat-completions server with latency and faults.",
    ),
    "app": (
        "workbench.demo.appserver",
        "The demo support-triage app: KB search and LLM triage over HTTP.",
    ),
    "workload": (
        "workbench.demo.workload",
        "Replay golden tickets through the demo app in-process for a fixed time.",
    ),
    "traffic": (
        "workbench.demo.traffic",
        "Send realistic traffic through the demo app; its traces to a file or over OTLP/HTTP.",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``<command> [options]`` and run the command; returns the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m workbench.demo", description="The bundled demo's servers and workloads."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, description) in COMMANDS.items():
        sub = commands.add_parser(name, help=description, description=description)
        if args_in and args_in[0] == name:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(_run=module.command, _parser=sub)
    args = parser.parse_args(args_in)
    return int(args._run(args, args._parser))


if __name__ == "__main__":
    raise SystemExit(main())
