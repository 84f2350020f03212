"""The ``toeplitz-conv`` command: show, export and analyse the matrix of a conv layer.

A thin layer over the public API::

    toeplitz-conv show    --weight 4,3 --length 5 [--stride S --padding P --dilation D
                          --groups G --padding-mode MODE --transpose --output-padding Q]
    toeplitz-conv show    --weight "1,2,3;4,5,6;7,8,9" --size 4x4 --padding 1
    toeplitz-conv export  --weight W.npy --length 128 [...] --out conv.mtx
    toeplitz-conv analyze --weight W.npy --size 28x28 --stride 2 [...] [--plot spectrum.png]

A 1-D layer takes ``--length L`` (or ``--size L``); an N-d layer ``--size`` with one
size per spatial axis separated by ``x`` (``--size 28x28``, ``--size 8x16x16``). Every
per-axis option takes one integer for all axes or one per axis, ``x``-separated:
``--stride 2x1``, ``--dilation 1x2``, ``--output-padding 1x0``. ``--padding`` is an
integer, ``left,right``, ``same`` or ``valid`` for every axis, or one item per axis,
``x``-separated, each an integer or a ``left,right`` pair: ``1x2`` (1 on axis 0, 2 on
axis 1), ``1x0,2`` (1 on both sides of axis 0; 0 left and 2 right on axis 1). ``,`` always
separates left from right and ``x`` always separates axes. ``--weight`` is a ``.npy`` file
of shape ``(C_out, C_in/groups, K_1, ..., K_n)``, comma-separated numbers (one channel,
1-D) or rows of them separated by ``;`` (one channel, a 2-D kernel: ``"1,2;3,4"``).

Bad input prints one line, ``toeplitz-conv: error: ...``, on stderr and exits with
status 2 (1 for a file that cannot be written; an internal error is one line too, status
1, with its traceback under ``TOEPLITZ_CONV_TRACEBACK=1``); work that takes more than a couple of
seconds shows its progress on stderr when stderr is a terminal.

Every command holds the library's validated :class:`~toeplitz_conv._layer.Layer` (for
``--transpose``, the convolution it transposes) and prints what the library returns:
``_options`` builds the parser, ``_parse`` turns the options into the layer,
``_commands`` has one function per subcommand, ``_render`` and ``_summary`` write the
text, ``_plot`` the picture (matplotlib is imported only there), ``_progress`` the
progress on a terminal and ``_errors`` the one-line messages.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from ..nn._cli import run_lipschitz
from ._commands import MAX_PRINT_CELLS, analyze, export, show
from ._errors import PROG, UsageError, one_line
from ._options import MAX_SHOW, build_parser
from ._progress import Progress
from ._render import certified_digits

__all__ = ["MAX_PRINT_CELLS", "MAX_SHOW", "TRACEBACK_VARIABLE", "certified_digits", "main"]

#: Set to 1 to see the traceback of an internal error instead of its one-line report.
TRACEBACK_VARIABLE = "TOEPLITZ_CONV_TRACEBACK"

_COMMANDS = {"show": show, "export": export, "analyze": analyze, "lipschitz": run_lipschitz}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 2 bad input, 1 other errors)."""
    out, err = sys.stdout, sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else 1
    try:
        return _COMMANDS[args.command](args, out, Progress(err))
    except (UsageError, ValueError, TypeError) as exc:
        err.write(f"{PROG}: error: {one_line(exc)}\n")
        return 2
    except (OSError, ImportError, MemoryError) as exc:
        if isinstance(exc, BrokenPipeError):  # `toeplitz-conv show ... | head`: quietly stop
            with contextlib.suppress(OSError, ValueError):
                # point stdout at devnull so that the interpreter's final flush is silent
                os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
            return 1
        err.write(f"{PROG}: error: {one_line(exc)}\n")
        return 1
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, unless asked for more
        if os.environ.get(TRACEBACK_VARIABLE) == "1":
            raise
        err.write(
            f"{PROG}: internal error: {type(exc).__name__}: {one_line(exc)} (a bug in "
            f"toeplitz_conv; please report it with the command; {TRACEBACK_VARIABLE}=1 shows "
            "the traceback)\n"
        )
        return 1
