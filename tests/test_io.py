"""save_matrix / load_matrix: round trips read by scipy's own readers, atomic writes, errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import toeplitz_conv as tc
from conftest import assert_canonical_sparse
from toeplitz_conv import _mtx
from toeplitz_conv import _tunables as tunables
from toeplitz_conv import io as tcio
from toeplitz_conv.io import load_matrix, save_matrix

EXTS = (".npz", ".mtx", ".mat")


def _matrices():
    rng = np.random.default_rng(20240604)
    W = rng.standard_normal((4, 2, 3))
    return {
        "seed": tc.conv1d_matrix([4.0, 3.0], 5),
        "reflect-stride-groups": tc.conv1d_matrix(
            W, 9, stride=2, padding=2, groups=2, padding_mode="reflect"
        ),
        "circular-float32": tc.conv1d_matrix(
            W.astype(np.float32), 8, padding=1, padding_mode="circular"
        ),
        "complex": tc.conv1d_matrix(W[:, :1] + 1j * W[:, 1:], 7, dilation=2),
        "transpose-csc": tc.conv_transpose1d_matrix(W, 5, stride=3, output_padding=2, format="csc"),
        "coo": tc.conv1d_matrix(W, 6, padding="same", format="coo"),
    }


MATRICES = _matrices()


def scipy_read(path):
    """Read `path` with scipy's own reader for its extension (not ours)."""
    ext = os.path.splitext(str(path))[1]
    if ext == ".npz":
        return sp.load_npz(path)
    if ext == ".mtx":
        return scipy.io.mmread(path)
    return scipy.io.loadmat(path)["M"]


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("key", sorted(MATRICES))
def test_round_trip(tmp_path, key, ext):
    M = MATRICES[key]
    path = tmp_path / f"m{ext}"
    save_matrix(M, path)
    dense = M.toarray()

    theirs = scipy_read(path)
    assert sp.issparse(theirs) and theirs.shape == M.shape
    np.testing.assert_array_equal(theirs.toarray().astype(M.dtype), dense)

    ours = load_matrix(path)
    assert_canonical_sparse(ours, "csr")
    assert ours.dtype == M.dtype  # restored from our record in .mtx/.mat
    np.testing.assert_array_equal(ours.toarray(), dense)
    assert sorted(os.listdir(tmp_path)) == [f"m{ext}"]  # no temporary file left behind


def test_npz_keeps_format_and_dtype(tmp_path):
    M = MATRICES["transpose-csc"].astype(np.float32)
    save_matrix(M, tmp_path / "a.npz")
    back = sp.load_npz(tmp_path / "a.npz")
    assert back.format == "csc" and back.dtype == np.float32


def test_mat_is_double_for_matlab(tmp_path):
    M = MATRICES["circular-float32"]
    save_matrix(M, tmp_path / "a.mat", params={"stride": 1})
    contents = scipy.io.loadmat(tmp_path / "a.mat")
    assert sp.issparse(contents["M"]) and contents["M"].dtype == np.float64
    record = json.loads(str(contents["toeplitz_conv"][0]))
    assert record["dtype"] == "float32" and record["params"] == {"stride": 1}
    complex_M = MATRICES["complex"]
    save_matrix(complex_M, tmp_path / "c.mat", name="A")
    assert scipy.io.loadmat(tmp_path / "c.mat")["A"].dtype == np.complex128


def test_mtx_comment_records_params(tmp_path):
    params = {
        "op": "conv1d",
        "weight_shape": np.array([4, 2, 3]),
        "input_length": np.int64(9),
        "stride": 2,
        "padding": (2, 2),
        "padding_mode": "reflect",
    }
    path = tmp_path / "m.mtx"
    save_matrix(MATRICES["reflect-stride-groups"], path, params=params)
    lines = path.read_text().splitlines()
    assert lines[0] == "%%MatrixMarket matrix coordinate real general"
    assert lines[1].startswith("%toeplitz_conv {")
    record = json.loads(lines[1].removeprefix("%toeplitz_conv "))
    assert record["version"] == tc.__version__
    assert record["dtype"] == "float64"
    assert record["params"] == {
        "op": "conv1d",
        "weight_shape": [4, 2, 3],
        "input_length": 9,
        "stride": 2,
        "padding": [2, 2],
        "padding_mode": "reflect",
    }


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("ext", EXTS)
def test_load_format(tmp_path, ext, fmt):
    M = MATRICES["reflect-stride-groups"]
    save_matrix(M, tmp_path / f"m{ext}")
    back = load_matrix(str(tmp_path / f"m{ext}"), format=fmt)
    assert_canonical_sparse(back, fmt)
    np.testing.assert_array_equal(back.toarray(), M.toarray())


def test_inputs_dense_and_spmatrix(tmp_path):
    dense = MATRICES["seed"].toarray()
    save_matrix(dense, tmp_path / "d.mtx")
    save_matrix(sp.csr_matrix(dense), tmp_path / "s.npz")
    for name in ("d.mtx", "s.npz"):
        back = load_matrix(tmp_path / name)
        assert isinstance(back, sp.csr_array)
        np.testing.assert_array_equal(back.toarray(), dense)


@pytest.mark.parametrize("ext", [".npz", ".mtx", ".mat"])
@pytest.mark.parametrize("kind", [sp.lil_array, sp.dok_array])
def test_every_sparse_array_format_saves(tmp_path, kind, ext):
    """LIL and DOK arrays save to every format (scipy's save_npz stores neither)."""
    dense = MATRICES["seed"].toarray()
    save_matrix(kind(dense), tmp_path / f"m{ext}")
    np.testing.assert_array_equal(load_matrix(tmp_path / f"m{ext}").toarray(), dense)


def test_reads_files_written_by_other_tools(tmp_path):
    # a symmetric Matrix Market file, a non-canonical COO in .npz, a dense MATLAB matrix
    sym = sp.csr_array(np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]]))
    scipy.io.mmwrite(tmp_path / "sym.mtx", sym, symmetry="symmetric")
    dup = sp.coo_array(([1.0, 2.0, 3.0], ([1, 0, 1], [1, 0, 1])), shape=(2, 2))
    sp.save_npz(tmp_path / "dup.npz", dup)
    scipy.io.savemat(tmp_path / "dense.mat", {"A": np.eye(3), "label": "not a matrix"})

    np.testing.assert_array_equal(load_matrix(tmp_path / "sym.mtx").toarray(), sym.toarray())
    back = load_matrix(tmp_path / "dup.npz", format="coo")
    assert_canonical_sparse(back, "coo")
    np.testing.assert_array_equal(back.toarray(), [[2.0, 0.0], [0.0, 4.0]])
    np.testing.assert_array_equal(load_matrix(tmp_path / "dense.mat").toarray(), np.eye(3))


def test_mat_variable_choice(tmp_path):
    A, B = MATRICES["seed"], sp.csr_array(np.eye(2))
    scipy.io.savemat(tmp_path / "two.mat", {"A": A, "B": B})
    with pytest.raises(ValueError, match=r"holds 2 candidate matrices \['A', 'B'\]; pass `name=`"):
        load_matrix(tmp_path / "two.mat")
    np.testing.assert_array_equal(load_matrix(tmp_path / "two.mat", name="B").toarray(), np.eye(2))
    with pytest.raises(ValueError, match=r"`name`='C' is not a variable of .*\['A', 'B'\]"):
        load_matrix(tmp_path / "two.mat", name="C")


def test_extension_case_insensitive(tmp_path):
    save_matrix(MATRICES["seed"], tmp_path / "UPPER.MTX")
    assert scipy.io.mmread(tmp_path / "UPPER.MTX").shape == (4, 5)


def test_permissions_follow_umask(tmp_path):
    path = tmp_path / "m.npz"
    save_matrix(MATRICES["seed"], path)
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


# --------------------------------------------------------------------------- atomic writes
def _failing_writer(*args, **kwargs):
    target = args[0]
    target.write(b"partial garbage")  # half a file, then the writer dies
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize(
    ("ext", "module", "attr"),
    [(".npz", sp, "save_npz"), (".mtx", tcio, "write_mtx"), (".mat", scipy.io, "savemat")],
)
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_write_leaves_old_file(tmp_path, monkeypatch, ext, module, attr, error):
    path = tmp_path / f"m{ext}"
    save_matrix(MATRICES["seed"], path)
    before = path.read_bytes()

    def fail(file, *args, **kwargs):
        file.write(b"partial garbage")
        raise error("disk on fire")

    monkeypatch.setattr(module, attr, fail)
    with pytest.raises(error, match="disk on fire"):
        save_matrix(MATRICES["coo"], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]
    monkeypatch.undo()
    np.testing.assert_array_equal(load_matrix(path).toarray(), MATRICES["seed"].toarray())


def test_failed_write_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "save_npz", _failing_writer)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_matrix(MATRICES["seed"], tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_failed_rename_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "m.mtx"
    path.write_text("old")

    def no_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tcio.os, "replace", no_replace)
    with pytest.raises(OSError, match="No space left"):
        save_matrix(MATRICES["seed"], path)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["m.mtx"]


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["m.txt", "m", "m.npy", "m.mtx.gz"])
def test_unknown_extension(tmp_path, name):
    msg = r"`path` must end in one of '\.npz', '\.mtx', '\.mat' \(the extension picks the format\)"
    with pytest.raises(ValueError, match=msg):
        save_matrix(MATRICES["seed"], tmp_path / name)
    with pytest.raises(ValueError, match=msg):
        load_matrix(tmp_path / name)
    assert os.listdir(tmp_path) == []


class _BytesPath:
    def __fspath__(self) -> bytes:
        return b"m.npz"


def test_path_type():
    with pytest.raises(TypeError, match=r"`path` must be a str or os.PathLike; got int"):
        save_matrix(MATRICES["seed"], 3)
    with pytest.raises(TypeError, match=r"`path` must be a str or os.PathLike; got bytes"):
        load_matrix(b"m.npz")
    with pytest.raises(TypeError, match=r"`path` must be a text path \(str\), not bytes"):
        save_matrix(MATRICES["seed"], _BytesPath())


@pytest.mark.parametrize(
    ("matrix", "error", "msg"),
    [
        (
            "abc",
            TypeError,
            r"`matrix` must be a scipy sparse array or matrix, or a 2-D numeric "
            r"array; got str",
        ),
        (None, TypeError, r"`matrix` must be a scipy sparse array .* got NoneType"),
        (
            np.arange(3.0),
            ValueError,
            r"`matrix` must be 2-D \(a matrix\); got an array with "
            r"shape \(3,\)",
        ),
        (np.zeros((2, 2, 2)), ValueError, r"`matrix` must be 2-D .* shape \(2, 2, 2\)"),
        (
            sp.coo_array(np.arange(3.0)),
            ValueError,
            r"`matrix` must be 2-D; got a sparse array "
            r"with shape \(3,\)",
        ),
    ],
)
def test_not_a_matrix(tmp_path, matrix, error, msg):
    with pytest.raises(error, match=msg):
        save_matrix(matrix, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_unwritable_paths(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"cannot write .*: the directory .* does not exist"
    ):
        save_matrix(MATRICES["seed"], tmp_path / "missing" / "m.npz")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot write .*d\.npz': it is a directory"):
        save_matrix(MATRICES["seed"], tmp_path / "d.npz")


def test_permission_denied_message(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tcio.os, "open", denied)
    with pytest.raises(PermissionError, match=r"cannot write .*m\.mtx': no permission to create"):
        save_matrix(MATRICES["seed"], tmp_path / "m.mtx")


def test_bad_params_and_name(tmp_path):
    with pytest.raises(TypeError, match=r"`params` must be a mapping \(a dict\) or None; got list"):
        save_matrix(MATRICES["seed"], tmp_path / "m.mtx", params=[1, 2])
    with pytest.raises(TypeError, match=r"`params` must be a mapping"):
        save_matrix(MATRICES["seed"], tmp_path / "m.npz", params="stride=2")  # checked for .npz too
    with pytest.raises(TypeError, match=r"`params` values must be numbers, strings, lists or "):
        save_matrix(MATRICES["seed"], tmp_path / "m.mtx", params={"f": object()})
    with pytest.raises(ValueError, match=r"`name` must be a valid MATLAB variable name"):
        save_matrix(MATRICES["seed"], tmp_path / "m.mat", name="1abc")
    assert os.listdir(tmp_path) == []


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot read .*nope\.mtx': it does not exist"):
        load_matrix(tmp_path / "nope.mtx")
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"cannot read .*bad\.npz' as a \.npz matrix file"):
        load_matrix(tmp_path / "bad.npz")
    (tmp_path / "bad.mtx").write_text("hello\n")
    with pytest.raises(ValueError, match=r"cannot read .*bad\.mtx' as a \.mtx matrix file"):
        load_matrix(tmp_path / "bad.mtx")
    with pytest.raises(ValueError, match=r"`format` must be one of 'csr', 'csc', 'coo'; got 'bsr'"):
        load_matrix(tmp_path / "bad.mtx", format="bsr")


# --------------------------------------------------------------------------- corrupted files
def _saved(tmp_path, ext):
    path = tmp_path / f"m{ext}"
    save_matrix(tc.conv1d_matrix(np.arange(1.0, 7.0).reshape(2, 1, 3), 6), path)
    return path


@pytest.mark.parametrize(
    ("ext", "damage", "reason"),
    [
        (".mat", lambda b: b[: len(b) // 2], r"\(MATLAB file\): "),
        (".mat", lambda b: b"garbage" * 20, r"\(MATLAB file\): Unknown mat file type"),
        (".npz", lambda b: b[: len(b) // 2], r"\(scipy.sparse.save_npz archive\): BadZipFile"),
        (
            ".npz",
            lambda b: b"garbage" * 20,
            r"\(scipy.sparse.save_npz archive\): it holds no numeric arrays \(corrupted, or not",
        ),
    ],
)
def test_corrupted_file_names_path_and_format(tmp_path, ext, damage, reason):
    """scipy's errors came without the path; numpy advised allow_pickle (issue 8)."""
    path = _saved(tmp_path, ext)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(
        ValueError, match=rf"cannot read '.*m\{ext}' as a \{ext} matrix file {reason}"
    ) as e:
        load_matrix(path)
    assert "allow_pickle" not in str(e.value)


def test_npz_of_object_arrays_gets_no_pickle_advice(tmp_path):
    np.savez(tmp_path / "o.npz", format=np.array(["csr"], dtype=object))
    with pytest.raises(ValueError, match=r"o\.npz' as a \.npz matrix file .*holds no numeric") as e:
        load_matrix(tmp_path / "o.npz")
    assert "allow_pickle" not in str(e.value)


@pytest.mark.parametrize(
    ("indices", "indptr", "match"),
    [
        # scipy's own words differ between versions ("indices" / "column index values")
        ([0, 1, 2, 10**6], [0, 1, 2, 3, 4], "ind.* must be < 4"),
        ([0, 1, 2, -3], [0, 1, 2, 3, 4], "ind.* must be >= 0"),
        ([0, 1, 2, 3], [0, 3, 1, 2, 4], "(indptr|index pointer).* non-decreasing"),
    ],
)
def test_npz_with_out_of_range_indices_is_refused(tmp_path, indices, indptr, match):
    """scipy builds such a matrix unchecked; summing its duplicates corrupted the heap."""
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        format=np.array("csr"),
        shape=np.array([4, 4]),
        data=np.ones(4),
        indices=np.array(indices),
        indptr=np.array(indptr),
    )
    with pytest.raises(ValueError, match=rf"bad\.npz' as a \.npz matrix file .*{match}"):
        load_matrix(path)


_LOAD_IN_CHILD = """
import sys
import toeplitz_conv as tc
try:
    tc.load_matrix(sys.argv[1])
except ValueError as exc:
    print(exc)
else:
    print("loaded")
"""


@pytest.mark.parametrize(
    ("tail", "want"),
    [
        (b"1 1 1.\0\n2 2 1.5\n", "holds a NUL byte at offset 58, so it is not text"),
        (b"1 1 1.5\n2 2 1.5E", "loaded"),
    ],
)
def test_mtx_that_crashed_scipy(tmp_path, tail, want):
    """scipy 1.17's mmread segfaults on these; run in a child so a crash is a failure here."""
    import subprocess
    import sys

    path = tmp_path / "m.mtx"
    path.write_bytes(b"%%MatrixMarket matrix coordinate real general\n2 2 2\n" + tail)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    run = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_CHILD, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert want in run.stdout


# --------------------------------------------------------------------------- untrusted records
def _mtx_with_record(path, dtype, field, entries):
    """A Matrix Market file whose record says `dtype` over the given entries."""
    record = json.dumps({"version": tc.__version__, "dtype": dtype, "params": {}})
    lines = [f"%%MatrixMarket matrix coordinate {field} general", f"%toeplitz_conv {record}"]
    lines += ["2 2 " + str(len(entries))] + [" ".join(map(str, e)) for e in entries]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("dtype", "field", "entries", "match"),
    [
        ("int8", "real", [(1, 1, 300.5)], r"says int8, but the entry at \(0, 0\) is 300\.5, which"),
        ("int8", "real", [(1, 1, 1), (2, 2, 300)], r"entry at \(1, 1\) is 300\.0.*become 44"),
        ("int32", "real", [(1, 2, 2.5)], r"entry at \(0, 1\) is 2\.5, which int32 cannot hold"),
        ("bool", "integer", [(1, 1, 2)], r"says bool, .* is 2, which bool cannot hold"),
        (
            "float32",
            "complex",
            [(1, 1, 1, 0), (2, 1, 1, 2)],
            r"says float32, but the entry at \(1, 0\) is \(1\+2j\), complex, and a real float32 "
            r"would drop its imaginary part",
        ),
        ("float32", "real", [(1, 1, 1e300)], r"1e\+300, which float32 cannot hold .*inf"),
        ("float32", "real", [(1, 1, 1e-300)], r"1e-300, which float32 cannot hold .*0\.0"),
    ],
)
def test_mtx_record_describes_never_converts(tmp_path, dtype, field, entries, match):
    path = _mtx_with_record(tmp_path / "m.mtx", dtype, field, entries)
    with pytest.raises(
        ValueError, match=rf"m\.mtx': its toeplitz_conv record's field 'dtype' .*{match}"
    ):
        load_matrix(path)


@pytest.mark.parametrize(
    ("dtype", "field", "entries", "want"),
    [
        ("int8", "real", [(1, 1, 3.0), (2, 2, -128.0)], np.int8),
        ("float32", "real", [(1, 1, 0.1)], np.float32),  # a decimal read at the recorded precision
        ("float64", "complex", [(1, 1, 2, 0)], np.float64),  # a zero imaginary part is exact
        ("complex64", "real", [(1, 1, 2.5)], np.complex64),
    ],
)
def test_mtx_record_restores_what_it_can_hold(tmp_path, dtype, field, entries, want):
    path = _mtx_with_record(tmp_path / "m.mtx", dtype, field, entries)
    back = load_matrix(path)
    assert back.dtype == want
    raw = scipy.io.mmread(path).toarray()
    np.testing.assert_array_equal(
        back.toarray(),
        raw.real.astype(want)
        if field == "complex" and want().dtype.kind != "c"
        else raw.astype(want),
    )


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ('{"dtype": "object"}', r"record's field 'dtype' is 'object', which is not a numeric"),
        ('{"dtype": "nothing"}', r"record's field 'dtype' is 'nothing', which is not a numeric"),
        ("[1, 2]", r"record is not a JSON object"),
        ("{not json", r"record is not a JSON object"),
    ],
)
def test_bad_records_are_refused(tmp_path, record, match):
    path = tmp_path / "m.mtx"
    path.write_text(
        f"%%MatrixMarket matrix coordinate real general\n%toeplitz_conv {record}\n1 1 1\n1 1 2\n"
    )
    with pytest.raises(ValueError, match=rf"cannot read '.*m\.mtx': its toeplitz_conv {match}"):
        load_matrix(path)


def test_mat_record_describes_never_converts(tmp_path):
    path = tmp_path / "m.mat"
    record = json.dumps({"version": tc.__version__, "dtype": "int8", "params": {}})
    scipy.io.savemat(
        path, {"M": sp.csc_array(np.array([[300.5, 0], [0, 1]])), "toeplitz_conv": record}
    )
    with pytest.raises(
        ValueError, match=r"m\.mat': .*'dtype' says int8, but the entry at \(0, 0\) is 300\.5"
    ):
        load_matrix(path)


# --------------------------------------------------------------------------- untrusted sizes
@pytest.mark.parametrize(
    ("size_line", "match"),
    [
        # 1e11 rows: a CSR result needs 745 GiB of row pointers (it raised MemoryError)
        (
            "100000000000 2 1",
            r"would take [\d,.]+ GiB, more than this machine's .* check the sizes",
        ),
        (
            "2 2 1000000000",
            r"declares 2 x 2 with 1,000,000,000 stored entries, which take at "
            r"least 6,000,000,000 bytes, but only \d+ bytes follow the header",
        ),
    ],
)
def test_mtx_sizes_checked_before_allocating(tmp_path, size_line, match):
    path = tmp_path / "m.mtx"
    path.write_text(f"%%MatrixMarket matrix coordinate real general\n{size_line}\n1 1 2.5\n")
    with pytest.raises(ValueError, match=rf"m\.mtx.*{match}"):
        load_matrix(path)


def test_mtx_dense_array_sizes_checked(tmp_path):
    path = tmp_path / "a.mtx"
    path.write_text("%%MatrixMarket matrix array real general\n100000 100000\n1\n2\n")
    with pytest.raises(ValueError, match=r"declares 100,000 x 100,000 with 10,000,000,000 stored"):
        load_matrix(path)


def test_npz_shape_checked_before_allocating(tmp_path):
    huge = sp.coo_array(([1.0], ([0], [0])), shape=(10**11, 2))
    sp.save_npz(tmp_path / "h.npz", huge)
    with pytest.raises(
        ValueError, match=r"h\.npz' \(100,000,000,000 x 2, 1 stored entries\) would"
    ):
        load_matrix(tmp_path / "h.npz")
    # the transposed shape fits CSR but not CSC (one pointer per column)
    sp.save_npz(tmp_path / "t.npz", huge.T)
    assert load_matrix(tmp_path / "t.npz", format="csr").nnz == 1
    with pytest.raises(ValueError, match=r"would take [\d,.]+ GiB"):
        load_matrix(tmp_path / "t.npz", format="csc")


# --------------------------------------------------------------------------- names
def test_mat_without_name_refuses_ambiguity(tmp_path):
    """A sparse variable used to win silently over a dense matrix."""
    scipy.io.savemat(
        tmp_path / "two.mat", {"A": np.arange(9.0).reshape(3, 3), "P": sp.eye_array(3)}
    )
    with pytest.raises(
        ValueError,
        match=r"holds 2 candidate matrices \['A', 'P'\]; pass `name=` to pick one \(its variables: "
        r"A \(3x3 double\), P \(3x3 sparse\)\)",
    ):
        load_matrix(tmp_path / "two.mat")
    np.testing.assert_array_equal(
        load_matrix(tmp_path / "two.mat", name="A").toarray(), np.arange(9.0).reshape(3, 3)
    )
    # scalars and vectors beside one matrix are not matrices to pick
    scipy.io.savemat(tmp_path / "one.mat", {"M": sp.eye_array(3), "n": 3, "b": np.ones(3)})
    np.testing.assert_array_equal(load_matrix(tmp_path / "one.mat").toarray(), np.eye(3))


def test_mat_record_names_its_variable(tmp_path):
    save_matrix(MATRICES["seed"], tmp_path / "m.mat", name="A")
    contents = scipy.io.loadmat(tmp_path / "m.mat")
    contents["B"] = sp.csc_array(np.eye(2))  # another matrix added beside ours
    scipy.io.savemat(
        tmp_path / "m.mat", {k: v for k, v in contents.items() if not k.startswith("__")}
    )
    np.testing.assert_array_equal(
        load_matrix(tmp_path / "m.mat").toarray(), MATRICES["seed"].toarray()
    )
    B = load_matrix(tmp_path / "m.mat", name="B")
    assert B.dtype == np.float64  # the record describes A only
    np.testing.assert_array_equal(B.toarray(), np.eye(2))


def test_mat_name_that_is_not_a_matrix(tmp_path):
    scipy.io.savemat(tmp_path / "c.mat", {"s": "text", "M": sp.eye_array(2)})
    with pytest.raises(
        ValueError, match=r"`name`='s': the variable of .*c\.mat' is a 1 char, not a"
    ):
        load_matrix(tmp_path / "c.mat", name="s")


@pytest.mark.parametrize("ext", [".npz", ".mtx"])
def test_name_refused_where_files_hold_no_names(tmp_path, ext):
    path = tmp_path / f"m{ext}"
    save_matrix(MATRICES["seed"], path)
    with pytest.raises(
        ValueError,
        match=rf"`name`='M' picks a variable of a \.mat file, but "
        rf"'.*m\{ext}' is a .*; leave `name` out",
    ):
        load_matrix(path, name="M")


# --------------------------------------------------------------------------- export at scale
def _random_sparse(rng, shape, nnz, dtype):
    rows = rng.integers(0, shape[0], nnz)
    cols = rng.integers(0, shape[1], nnz)
    values = rng.standard_normal(nnz) * 10.0 ** rng.integers(-30, 30, nnz)
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.standard_normal(nnz)
    elif np.dtype(dtype).kind in "iu":
        values = (
            rng.integers(-(2**40), 2**40, nnz)
            if np.dtype(dtype).itemsize == 8
            else (rng.integers(-100, 100, nnz))
        )
    M = sp.coo_array((values.astype(dtype), (rows, cols)), shape=shape)
    M.sum_duplicates()  # a reader sums duplicates in its own precision
    return M


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.complex64,
                                   np.int64, np.int8, np.bool_])  # fmt: skip
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr"])
def test_mtx_written_in_chunks_reads_back_exactly(tmp_path, monkeypatch, dtype, fmt):
    """The chunked writer (numpy-formatted text) against scipy's reader, chunk edges included."""
    monkeypatch.setattr(tunables, "MTX_CHUNK", 7)
    rng = np.random.default_rng(7)
    M = _random_sparse(rng, (40, 31), 300, dtype).asformat(fmt)
    M = M.astype(dtype)  # bool: random values -> True/False
    if np.dtype(dtype).kind == "f":  # infinities, an explicit zero, subnormals, the largest
        tiny, big = np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max
        special = np.array([np.inf, -np.inf, 0.0, -tiny, big], dtype=dtype)
        M = sp.coo_array(M)
        M = sp.coo_array(
            (np.concatenate([M.data, special]),
             (np.concatenate([M.coords[0], [0, 1, 2, 3, 39]]),
              np.concatenate([M.coords[1], [30, 0, 5, 6, 7]]))), shape=M.shape
        ).asformat(fmt)  # fmt: skip
    path = tmp_path / "m.mtx"
    save_matrix(M, path)
    text = path.read_text()
    field = {"c": "complex", "f": "real"}.get(np.dtype(dtype).kind, "integer")
    assert text.startswith(f"%%MatrixMarket matrix coordinate {field} general\n%toeplitz_conv {{")
    theirs = scipy.io.mmread(path)  # scipy's own reader
    expected = sp.csr_array(M).toarray()
    np.testing.assert_array_equal(theirs.toarray().astype(expected.dtype), expected)
    assert theirs.nnz == M.nnz  # every stored entry written once, explicit zeros included
    ours = load_matrix(path)
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours.toarray(), expected)
    assert "  " not in text and " \n" not in text  # one space between fields


def test_mtx_float32_written_short(tmp_path):
    """float32 values are written to float32's own shortest text (0.1, not 0.10000000149)."""
    M = sp.csr_array(np.array([[0.1, 0.0], [1 / 3, 3e38]], dtype=np.float32))
    save_matrix(M, tmp_path / "m.mtx")
    assert tmp_path.joinpath("m.mtx").read_text().splitlines()[3:] == [
        "1 1 0.1",
        "2 1 0.33333334",
        "2 2 3e+38",
    ]


def test_mtx_of_an_empty_matrix(tmp_path):
    save_matrix(sp.csr_array((3, 4)), tmp_path / "e.mtx")
    assert tmp_path.joinpath("e.mtx").read_text().splitlines()[2] == "3 4 0"
    back = load_matrix(tmp_path / "e.mtx")
    assert back.shape == (3, 4) and back.nnz == 0


def test_failure_in_a_later_chunk_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.mtx"
    save_matrix(MATRICES["seed"], path)
    before = path.read_bytes()
    monkeypatch.setattr(tunables, "MTX_CHUNK", 2)
    calls = []
    real = _mtx._mtx_lines

    def flaky(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(_mtx, "_mtx_lines", flaky)
    with pytest.raises(OSError, match="No space left"):
        save_matrix(MATRICES["reflect-stride-groups"], path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.mtx"]


@pytest.mark.parametrize("ext", [".npz", ".mat"])
def test_compress_false(tmp_path, ext):
    M = tc.conv1d_matrix(np.ones((8, 8, 3)), 500, padding=1)
    save_matrix(M, tmp_path / f"z{ext}")
    save_matrix(M, tmp_path / f"u{ext}", compress=False)
    assert (tmp_path / f"u{ext}").stat().st_size > 2 * (tmp_path / f"z{ext}").stat().st_size
    for name in ("z", "u"):
        np.testing.assert_array_equal(load_matrix(tmp_path / f"{name}{ext}").toarray(), M.toarray())
    if ext == ".npz":
        import zipfile

        with zipfile.ZipFile(tmp_path / "u.npz") as archive:
            assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


@pytest.mark.parametrize("table_bytes", [0, 1 << 25])  # digits computed, or from a table
def test_mtx_entries_of_a_row_block(tmp_path, monkeypatch, table_bytes):
    """A row block written with its rows numbered from an offset (for writers by blocks)."""
    import io as _io

    monkeypatch.setattr(tunables, "DIGIT_TABLE_BYTES", table_bytes)
    monkeypatch.setattr(tunables, "MTX_CHUNK", 5)
    M = MATRICES["reflect-stride-groups"]
    buffers = []
    for r0, r1 in [(0, 7), (7, 8), (8, M.shape[0])]:
        buffer = _io.BytesIO()
        _mtx.write_mtx_entries(buffer, sp.csr_array(M[r0:r1]), row_offset=r0)
        buffers.append(buffer.getvalue())
    head = f"%%MatrixMarket matrix coordinate real general\n{M.shape[0]} {M.shape[1]} {M.nnz}\n"
    (tmp_path / "b.mtx").write_bytes(head.encode() + b"".join(buffers))
    np.testing.assert_array_equal(scipy.io.mmread(tmp_path / "b.mtx").toarray(), M.toarray())


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.int8, np.bool_])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_mat_streamed_by_column_blocks(tmp_path, monkeypatch, dtype, fmt, compress):
    """The .mat writer (CSC order block by block) against scipy's reader."""
    monkeypatch.setattr(tunables, "MAT_BLOCK", 13)
    monkeypatch.setattr(tunables, "MTX_CHUNK", 17)
    rng = np.random.default_rng(11)
    M = _random_sparse(rng, (23, 41), 200, dtype).asformat(fmt)
    path = tmp_path / "m.mat"
    save_matrix(M, path, name="Conv", compress=compress)
    contents = scipy.io.loadmat(path)
    theirs = contents["Conv"]
    assert sp.issparse(theirs) and theirs.dtype == (
        np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    )
    np.testing.assert_array_equal(theirs.toarray(), sp.csr_array(M).toarray().astype(theirs.dtype))
    assert json.loads(str(contents["toeplitz_conv"][0]))["dtype"] == str(np.dtype(dtype))
    back = load_matrix(path)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back.toarray(), sp.csr_array(M).toarray())


def test_mat_of_empty_and_non_canonical(tmp_path):
    save_matrix(sp.csr_array((3, 5)), tmp_path / "e.mat")
    assert scipy.io.loadmat(tmp_path / "e.mat")["M"].shape == (3, 5)
    assert load_matrix(tmp_path / "e.mat").nnz == 0
    dup = sp.csr_array(([5.0, 1.0, 2.0], [0, 2, 2], [0, 1, 3]), shape=(2, 3))
    assert not dup.has_canonical_format
    save_matrix(dup, tmp_path / "d.mat")
    np.testing.assert_array_equal(
        scipy.io.loadmat(tmp_path / "d.mat")["M"].toarray(), [[5, 0, 0], [0, 0, 3]]
    )
    assert dup.nnz == 3  # the caller's matrix is left as it was


def test_mat_too_large_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tunables, "MAT_MAX_BYTES", 1000)
    with pytest.raises(
        ValueError,
        match=r"too large for a MATLAB \(v5\) \.mat file, whose "
        r"variables hold less than 4 GiB .*write \.npz or \.mtx instead",
    ):
        save_matrix(MATRICES["reflect-stride-groups"], tmp_path / "m.mat")
    assert os.listdir(tmp_path) == []
