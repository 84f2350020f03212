"""Run every MPI check in one launch (pylops-mpi takes seconds to import on each rank).

Usage: ``mpiexec -n <ranks> python run_checks.py <shared temporary directory> [quick]``.
The errors come first (rank 0 prints every rank's ``CASE`` lines), then the operator, the
matrix files and the analysis (rank 0 prints ``OK`` lines). Any failed check raises, and
the uncaught exception aborts every rank (``mpi4py.run``), so the job never hangs.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import check_errors
import check_matrix
import check_operator

check_errors.main()
check_operator.main(quick="quick" in sys.argv[2:])
check_matrix.main(sys.argv[1])
