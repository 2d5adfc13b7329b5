"""The ``deepcuts`` command line: ``deepcuts <command> [options]``.

Each subcommand lives in its own module exposing ``register(subparsers)``; errors caused by the
user (bad file, unknown id, bad option) print one clear line and exit with status 2, without a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from deepcuts._version import __version__
from deepcuts.exceptions import DeepcutsError

__all__ = ["main", "build_parser"]

#: subcommand modules, in the order shown by ``deepcuts --help``
COMMANDS = [
    "demo",
    "ingest",
    "train",
    "recommend",
    "personas",
    "evaluate",
    "tune",
    "features",
    "serve",
    "spark",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepcuts",
        description="Music recommendations beyond the hits.",
    )
    parser.add_argument("--version", action="version", version=f"deepcuts {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"deepcuts.cli._{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except DeepcutsError as e:
        print(f"deepcuts {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `deepcuts recommend ... | head`: the reader left, stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0
    except OSError as e:  # missing file, permission, disk full: no traceback either
        print(f"deepcuts {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
