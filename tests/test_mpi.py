"""toeplitz_conv.mpi: the distributed operator and matrix, checked under ``mpiexec``.

The MPI checks live in ``tests/mpi_scripts/`` and run in one ``mpiexec -n 2`` and one
``mpiexec -n 3`` launch (unequal slabs), plus one launch each for the cases of issue 14
(``check_hardening.py``: the transpose of complex weights, the square layout, vec order,
arguments that differ between ranks); these tests launch them with a timeout, so a
hang fails instead of blocking, and check what every rank printed. The plan of slabs and
halos (pure integer bookkeeping) is checked in-process with hypothesis. Skips only when
mpi4py/pylops-mpi are missing and TOEPLITZ_CONV_NO_SKIPS is unset.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
SCRIPTS = os.path.join(HERE, "mpi_scripts")


def _require_mpi() -> None:
    missing = [m for m in ("mpi4py", "pylops_mpi") if _find(m) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (pip install 'toeplitz_conv[mpi]')"
    if os.environ.get("TOEPLITZ_CONV_NO_SKIPS"):
        pytest.fail(f"TOEPLITZ_CONV_NO_SKIPS is set but {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def _find(module: str) -> object:
    import importlib.util

    return importlib.util.find_spec(module)


def _mpiexec() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")
    if found is None:
        if os.environ.get("TOEPLITZ_CONV_NO_SKIPS"):
            pytest.fail("mpiexec not found next to the interpreter nor on PATH", pytrace=False)
        pytest.skip("mpiexec not found (pip install mpich)")
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # Ranks share few cores here: let a waiting rank yield instead of spinning.
    env.setdefault("MPIR_CVAR_ENABLE_HEAVY_YIELD", "1")
    env.setdefault("MPIR_CVAR_POLLS_BEFORE_YIELD", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _launch(ranks: int, script: str, *args: str, timeout: float = 240) -> str:
    command = [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py"]
    command += [os.path.join(SCRIPTS, script), *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=_env(), check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(command)}` did not finish in {timeout} s (a hang?): {exc}")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


_require_mpi()

from toeplitz_conv._geometry import conv_geometry  # noqa: E402
from toeplitz_conv.mpi import plan_slabs, split_sizes  # noqa: E402

ERROR_CASES = {
    "bad_padding_on_one_rank": "`padding` must be an integer >= 0, got -1",
    "other_weight_on_one_rank": "must be the same on every rank; ranks [1] differ",
    "wrong_local_sizes": "`local_size` must be given on every rank or on none",
    "bad_slab_shape_on_one_rank": "`x` on rank 1 must have the local shape",
    "bad_matrix_layer_on_one_rank": "rank 0 of",
}


@pytest.mark.parametrize("ranks", [2, 3])
def test_distributed_equals_single_process(ranks, tmp_path):
    """Forward/adjoint/transpose to 1e-12 over every mode, stride, dilation, groups; dot
    tests across ranks; cgls; gathered matrix == conv1d_matrix; the parallel files read
    back equal; the distributed norm bracket and singular values; and bad input on one
    rank gives the same error on every rank (3 ranks: unequal slabs, a quicker grid)."""
    out = _launch(ranks, "run_checks.py", str(tmp_path), *(["quick"] if ranks == 3 else []))
    lines = out.splitlines()
    assert "OK transpose" in lines and "OK cgls" in lines and "OK analysis" in lines, out
    assert "OK small-slabs" in lines, out
    assert any(line.startswith("OK operator ") for line in lines), out
    assert any(line.startswith("OK matrix ") for line in lines), out
    # every rank printed one line per error case, and they agree
    cases: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        if line.startswith("CASE "):
            name, _, rest = line[5:].partition(" ")
            _, _, message = rest.partition(" ")  # after the rank
            cases[name].append(message)
    assert set(cases) == set(ERROR_CASES), out
    for name, messages in cases.items():
        assert len(messages) == ranks, (name, messages)
        assert len(set(messages)) == 1, (name, messages)  # the same error on every rank
        assert messages[0].startswith("ValueError: "), (name, messages)
        assert ERROR_CASES[name] in messages[0], (name, messages[0])


def test_import_is_lazy_and_hints_the_extra():
    """`import toeplitz_conv` never imports mpi4py; without it the mpi module says how to
    install it."""
    code = (
        "import sys, toeplitz_conv\n"
        "assert 'mpi4py' not in sys.modules and 'pylops_mpi' not in sys.modules\n"
        "sys.modules['mpi4py'] = None\n"
        "try:\n"
        "    import toeplitz_conv.mpi\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert 'pip install "toeplitz_conv[mpi]"' in done.stdout


@st.composite
def _layouts(draw):
    K = draw(st.integers(1, 5))
    d = draw(st.integers(1, 3))
    s = draw(st.integers(1, 4))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    ranks = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 12), min_size=ranks, max_size=ranks))
    L = sum(sizes)
    limit = L - 1 if mode == "reflect" else L
    p_l = draw(st.integers(0, min(limit, 2 * d * K)))
    p_r = draw(st.integers(0, min(limit, 2 * d * K)))
    return L, K, s, d, (p_l, p_r), mode, sizes


@given(_layouts())
def test_plan_covers_every_row_and_reads_only_what_it_has(layout):
    """Output rows tile [0, L_out) in rank order (the input slabs themselves when the
    split axis keeps its length); each rank's window is exactly what its rows read;
    everything it reads is its own or in a piece received from the rank that owns it."""
    L, K, s, d, padding, mode, sizes = layout
    try:
        geom = conv_geometry(L, K, stride=s, dilation=d, padding=padding, padding_mode=mode)
    except ValueError:
        return  # an empty output: not a layout question
    plan = plan_slabs(geom, sizes)
    assert plan[0].out_start == 0 and plan[-1].out_stop == geom.output_length
    assert all(plan[r].out_stop == plan[r + 1].out_start for r in range(len(plan) - 1))
    assert [p.size for p in plan] == sizes
    if geom.output_length == L:  # a square layout: output rows = input positions
        assert all((p.out_start, p.out_stop) == (p.start, p.stop) for p in plan)
    for p in plan:
        rows = np.arange(p.out_start, p.out_stop)
        for owner, lo, hi in p.pieces:
            assert owner != p.rank and plan[owner].start <= lo < hi <= plan[owner].stop
        if rows.size == 0:
            continue
        first = rows * s - geom.pad_left
        if geom.output_length != L:  # the first-tap rule
            inside = np.clip(first, 0, L - 1)
            assert np.all((inside >= p.start) & (inside < p.stop))
            if mode == "zeros":  # only the right neighbour's first d(K-1) samples
                assert p.halo <= d * (K - 1)
        assert p.ext_start == first[0] and p.ext_stop == first[-1] + d * (K - 1) + 1
        src = geom.positions(rows).ravel()
        where = p.buffer_rows(src[src >= 0], L)
        assert np.all((where >= 0) & (where < p.buffer_size))


def test_split_sizes_and_refusals():
    assert split_sizes(10, 3) == [4, 3, 3]
    assert split_sizes(3, 3) == [1, 1, 1]
    geom = conv_geometry(10, 3)
    with pytest.raises(ValueError, match=r"must be >= 1 each and add up to the length 10"):
        plan_slabs(geom, [5, 4])
    with pytest.raises(ValueError, match=r"must be >= 1 each"):
        plan_slabs(geom, [10, 0])
    # a slab smaller than the halo: rank 0 reads its piece from ranks 1 and 2
    plan = plan_slabs(conv_geometry(10, 4), [4, 1, 5])
    assert plan[0].pieces == ((1, 4, 5), (2, 5, 7))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("channels", [(4, 2, 2), (3, 3, 1), (1, 1, 1), (4, 1, 4)])
@pytest.mark.parametrize("stride", [1, 3])
def test_row_blocks_are_slices_of_the_matrix(mode, channels, stride):
    """Rows [r0, r1) built alone equal those rows of conv1d_matrix, canonical, any range
    (within a channel, across channels and groups); the ranges balance the nonzeros."""
    import toeplitz_conv as tc
    from toeplitz_conv._layer import conv_layer
    from toeplitz_conv.mpi import row_ranges
    from toeplitz_conv.mpi._spec import conv_spec

    c_out, g, groups = channels
    w = np.random.default_rng(1).standard_normal((c_out, g, 3))
    kw = dict(stride=stride, padding=(2, 1), dilation=2, groups=groups, padding_mode=mode)
    full = tc.conv1d_matrix(w, 17, **kw)
    spec = conv_spec(conv_layer(w, 17, **kw), None)
    m = full.shape[0]
    for r0, r1 in [(0, m), (1, m - 2), (3, 4), (m // 3, 2 * m // 3), (0, 1)]:
        block = spec.rows(r0, r1)
        assert block.shape == (r1 - r0, full.shape[1]) and block.has_canonical_format
        assert (block != full[r0:r1]).nnz == 0
    ranges = row_ranges(w, 17, parts=3, **kw)
    assert ranges[0][0] == 0 and ranges[-1][1] == m
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(2))
    counts = [full[a:b].nnz for a, b in ranges]
    assert max(counts) - min(counts) <= 2 * int(np.diff(full.indptr).max())


@pytest.mark.parametrize(
    ("shape", "size", "kw"),
    [
        ((1, 1, 2, 2, 2), (7, 3, 4), {"padding": 1, "padding_mode": "circular"}),
        ((2, 2, 3, 3), (9, 7), {"padding": 2}),
        ((3, 1, 2, 5, 3), (6, 9, 5), {"padding": (1, 2, (0, 3)), "stride": (1, 2, 1)}),
        ((4, 2, 3, 2), (8, 6), {"padding": ((2, 0), 1), "groups": 2, "padding_mode": "reflect"}),
    ],
)
def test_row_ranges_balance_nonzeros_in_nd(shape, size, kw):
    """N-d: the ranges tile the rows and hold equal nonzeros up to one row's worth."""
    import toeplitz_conv as tc
    from toeplitz_conv.mpi import row_ranges

    w = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)  # no zero weight
    full = tc.conv_matrix(w, size, **kw)
    widest = int(np.diff(full.indptr).max())
    for parts in (2, 3, 5):
        ranges = row_ranges(w, size, parts=parts, **kw)
        assert ranges[0][0] == 0 and ranges[-1][1] == full.shape[0]
        counts = [full[a:b].nnz for a, b in ranges]
        assert max(counts) - min(counts) <= widest, (parts, counts)


def test_parts_manifest_round_trip_and_refusals(tmp_path):
    """One rank: the parts and the manifest read back whole; a manifest whose parts do not
    tile the matrix, or that is not ours, is refused naming the file."""
    import json

    import toeplitz_conv as tc
    from toeplitz_conv.mpi import local_matrix, save_matrix_parts

    w = np.array([[[1.0, -2.0, 0.5]], [[0.25, 1.0, 3.0]]])
    block, rows = local_matrix(w, 12, padding=1, padding_mode="reflect")
    path = tmp_path / "m.json"
    save_matrix_parts(block, rows, path, params={"note": "test"})
    full = tc.conv1d_matrix(w, 12, padding=1, padding_mode="reflect")
    back = tc.load_matrix(path, format="csc")
    assert type(back).__name__ == "csc_array" and (back != full).nnz == 0
    record = json.loads(path.read_text())
    assert record["shape"] == list(full.shape) and record["nnz"] == full.nnz
    record["parts"][0]["rows"] = [0, 5]
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"m\.json.*must tile"):
        tc.load_matrix(path)
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match=r"not a 'toeplitz_conv matrix parts' manifest"):
        tc.load_matrix(path)
    with pytest.raises(ValueError, match=r"must end in '\.json'"):
        save_matrix_parts(block, rows, tmp_path / "m.npz")


HARDENING_CASES = ["transpose_complex", "same_is_square", "vec_layout", "collective_checks"]


@functools.cache
def _hardening_output(ranks: int, folder: str) -> str:
    return _launch(ranks, "check_hardening.py", folder, timeout=300)


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("case", HARDENING_CASES)
def test_hardening(case, ranks, tmp_path_factory):
    """Issue 14, items 9-12 (one launch per rank count, one test per case): see
    tests/mpi_scripts/check_hardening.py for what each case checks."""
    folder = str(tmp_path_factory.getbasetemp() / f"hardening{ranks}")
    os.makedirs(folder, exist_ok=True)
    lines = _hardening_output(ranks, folder).splitlines()
    mine = [line for line in lines if line.startswith(f"CASE {case} ")]
    assert mine == [f"CASE {case} OK"], "\n".join(lines)
