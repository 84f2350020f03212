"""``python -m toeplitz_conv``: the ``toeplitz-conv`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
