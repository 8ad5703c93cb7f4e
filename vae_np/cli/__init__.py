"""Command line: ``python -m vae_np COMMAND`` or ``vae-np COMMAND``.

Each command lives in its own module with ``register(subparsers)``, which adds a subparser whose
``func(args) -> int`` runs it. Bad input prints one line ``vae-np: error: ...`` and exits with
status 2, never a traceback. What a command does with a run of one model kind is that kind's
(``kinds``: the protocol and registry; ``vae``, ``vq``: the kinds, listed in KIND_MODULES and
imported before the commands).
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("vae_np.cli.gradcheck", "vae_np.cli.train", "vae_np.cli.evaluate",
                   "vae_np.cli.images", "vae_np.cli.verify", "vae_np.cli.explain",
                   "vae_np.cli.lecture", "vae_np.cli.exercises", "vae_np.cli.flows",
                   "vae_np.cli.prior")
KIND_MODULES = ("vae_np.cli.vae", "vae_np.cli.vq")
for _name in KIND_MODULES:      # the model kinds' commands, registered in this order whichever
    importlib.import_module(_name)      # vae_np.cli module is imported first


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``vae-np train: error: argument --epochs: ...`` (exit 2),
    without the usage block (``-h`` shows it); subcommand parsers inherit the class."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vae-np",
        description="A pure-NumPy Variational Autoencoder with hand-written, checked gradients.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:     # OSError: FileNotFoundError, IsADirectoryError, ...
        print(f"vae-np: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except MemoryError as exc:              # sizes too large for this machine
        print(f"vae-np: error: not enough memory ({' '.join(str(exc).split())}); "
              "choose smaller sizes", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vae-np: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
