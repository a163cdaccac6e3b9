"""`python -m orchestrator.hpo suggest SPEC.json`: run a job, then print the diagnostics' suggestions."""

from __future__ import annotations

import argparse
import sys

from .cli import command_suggest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.hpo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    suggest = commands.add_parser("suggest", help="run a job in this process and suggest changed specs")
    suggest.add_argument("spec", help="path to a JobSpec JSON file, or - for standard input")
    suggest.set_defaults(handler=command_suggest)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
