"""The ``phylocl`` command line: argument parsing only; every subcommand calls the library.

User errors (bad paths, bad FASTA, bad config values) end with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from phylocl.errors import InputError

__all__ = ["main", "build_parser"]


def _cmd_models(args: argparse.Namespace) -> int:
    from phylocl.models.registry import describe_model, list_models

    names = list_models()
    if args.json:
        print(json.dumps({n: describe_model(n) for n in names}, indent=2))
    else:
        for n in names:
            print(n)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from phylocl import __version__

    parser = argparse.ArgumentParser(
        prog="phylocl",
        description="Contrastive learning on ortholog families (FASTA in, sequence embeddings out).",
    )
    parser.add_argument("--version", action="version", version=f"phylocl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("models", help="list the registered encoder configurations")
    p.add_argument("--json", action="store_true", help="print each config as JSON")
    p.set_defaults(func=_cmd_models)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``phylocl`` console script. Returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"phylocl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"phylocl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
