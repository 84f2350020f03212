"""The command's options: the argparse parser of every subcommand."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .._geometry import PADDING_MODES
from ..nn._cli import add_lipschitz
from ._errors import PROG

__all__ = ["MAX_SHOW", "build_parser"]

#: Print the matrix itself when it has at most this many rows and columns (``--max-size``).
MAX_SHOW = 32


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is exactly one line on stderr (no usage block)."""

    def error(self, message: str) -> NoReturn:
        sub = self.prog.removeprefix(PROG).strip()
        hint = f" (see `{PROG} {sub + ' ' if sub else ''}--help`)"
        self.exit(2, f"{PROG}: error: {message}{hint}\n")


def _conv_options(parser: argparse.ArgumentParser) -> None:
    """The layer: ``--weight``, ``--length`` or ``--size``, and torch's parameters."""
    g = parser.add_argument_group("the convolution")
    g.add_argument(
        "--weight",
        required=True,
        metavar="W",
        help="kernel: comma-separated numbers (one channel in and out, e.g. 4,3; write "
        "--weight=-1,2 when it starts with a minus), rows of them separated by ';' for a "
        'one-channel 2-D kernel ("1,2;3,4"), or a .npy file of shape '
        "(C_out, C_in/groups, K_1, ..., K_n) ((C_in, C_out/groups, K_1, ..., K_n) with "
        "--transpose)",
    )
    size = g.add_mutually_exclusive_group(required=True)
    size.add_argument(
        "--length",
        type=int,
        metavar="N",
        help="1-D: input length L per channel (L_in of the transposed convolution)",
    )
    size.add_argument(
        "--size",
        metavar="HxW",
        help="input size per channel, one integer per spatial axis separated by 'x': "
        "28x28 (2-D), 8x16x16 (3-D), 28 (1-D, as --length)",
    )
    per_axis = "an integer for every axis or one per axis, like 2x1 (default: 1)"
    g.add_argument("--stride", default="1", metavar="S", help=per_axis)
    g.add_argument(
        "--padding",
        default="0",
        metavar="P",
        help="an integer, 'left,right', 'same' or 'valid' for every axis, or one item per "
        "axis separated by 'x', each an integer or 'left,right': 1x2, 1x0,2 (default: 0)",
    )
    g.add_argument("--dilation", default="1", metavar="D", help=per_axis)
    g.add_argument("--groups", type=int, default=1, metavar="G", help="default: 1")
    g.add_argument(
        "--padding-mode",
        default="zeros",
        choices=PADDING_MODES,
        help="default: zeros",
    )
    g.add_argument(
        "--transpose",
        action="store_true",
        help="the transposed convolution (conv_transpose1d/2d/3d) instead",
    )
    g.add_argument(
        "--output-padding",
        default="0",
        metavar="Q",
        help="extra output samples of the transposed convolution, an integer or one per "
        "axis like 1x0 (default: 0)",
    )


def _command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand that takes the layer's options."""
    parser = sub.add_parser(name, help=summary, description=description)
    _conv_options(parser)
    return parser


def _subcommands(sub: Any) -> None:
    """``show``, ``export`` and ``analyze``: the layer's options and each one's own."""
    show = _command(
        sub,
        "show",
        "shapes, output length, formula and the matrix",
        "Print the shapes, the output-length arithmetic, the formula with your numbers and "
        "the matrix with labelled rows and columns (a sparsity summary when it is large).",
    )
    out = show.add_argument_group("output")
    out.add_argument("--latex", action="store_true", help="the formula in LaTeX")
    out.add_argument(
        "--max-size",
        type=int,
        default=MAX_SHOW,
        metavar="N",
        help=f"print the matrix when it has at most N rows and columns (default: {MAX_SHOW})",
    )
    export = _command(
        sub,
        "export",
        "write the matrix to .npz, .mtx or .mat",
        "Write the matrix to a file: the format follows the extension (.npz scipy, .mtx "
        "Matrix Market with the parameters in a comment, .mat MATLAB).",
    )
    export.add_argument("--out", required=True, metavar="FILE", help="FILE.npz, .mtx or .mat")
    export.add_argument(
        "--no-compress",
        action="store_true",
        help="write .npz and .mat without compression (faster, larger files)",
    )
    analyze = _command(
        sub,
        "analyze",
        "spectral norm, bounds, condition number, singular values",
        "Spectral norm (with certified bounds), condition number and the largest and "
        "smallest singular values; --plot draws the sparsity pattern and the spectrum.",
    )
    analyze.add_argument(
        "-k",
        type=int,
        default=5,
        metavar="K",
        help="how many of the largest and smallest singular values to list (default: 5)",
    )
    analyze.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the sparsity pattern and the singular values (needs matplotlib)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``toeplitz-conv`` parser: ``show``, ``export``, ``analyze`` and ``lipschitz``."""
    from .._version import __version__

    parser = _Parser(
        prog=PROG,
        description="The exact (sparse) matrix of torch's conv1d/2d/3d and "
        "conv_transpose1d/2d/3d: see it, export it, analyse it.",
        epilog=f"Examples: {PROG} show --weight 4,3 --length 5;   "
        f'{PROG} show --weight "1,2,3;4,5,6;7,8,9" --size 4x4 --padding 1',
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _subcommands(sub)
    add_lipschitz(sub)  # toeplitz_conv.nn: a torch model's certified Lipschitz bracket
    return parser
