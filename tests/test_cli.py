"""The ``toeplitz-conv`` command: a few runs as a real subprocess, the rest in-process."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import toeplitz_conv as tc
from strategies import conv_nd_configs, conv_transpose_nd_configs
from toeplitz_conv import cli
from toeplitz_conv._build import layer_matrix
from toeplitz_conv._layer import conv_layer, transpose_layer
from toeplitz_conv.cli import _commands, _errors, _options, _parse, _progress, _render, _summary

SEED_MATRIX = """\
M (8 nonzeros, '.' = 0):
      x[0]  x[1]  x[2]  x[3]  x[4]
y[0]     4     3     .     .     .
y[1]     .     4     3     .     .
y[2]     .     .     4     3     .
y[3]     .     .     .     4     3
"""


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """``python -m toeplitz_conv ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "toeplitz_conv", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def require_plot():
    """matplotlib, or skip (a failure under ``TOEPLITZ_CONV_REQUIRE_PLOT=1``)."""
    if os.environ.get("TOEPLITZ_CONV_REQUIRE_PLOT") == "1":
        import matplotlib

        return matplotlib
    return pytest.importorskip("matplotlib")


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("toeplitz-conv: error: "), err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- subprocess
def test_subprocess_show_seed():
    proc = run("show", "--weight", "4,3", "--length", "5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert out.startswith("conv1d: x (C_in=1, L=5) -> y (C_out=1, L_out=4)\n")
    assert "weight (C_out, C_in/groups, K) = (1, 1, 2) = [4, 3]" in out
    assert "      = floor((5 + 0 + 0 - 1*(2-1) - 1) / 1) + 1\n      = 4\n" in out
    assert "     = 4*x[i] + 3*x[i + 1]\n" in out
    assert out.endswith(SEED_MATRIX)


def test_subprocess_export_read_by_scipy(tmp_path):
    W = np.arange(1.0, 13).reshape(4, 1, 3)
    np.save(tmp_path / "w.npy", W)
    proc = run(
        "export", "--weight", "w.npy", "--length", "6", "--groups", "2", "--stride", "2",
        "--padding", "1", "--padding-mode", "reflect", "--out", "conv.mtx", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "wrote conv.mtx: 12 x 12, 32 nonzeros (Matrix Market)\n"
    M = scipy.io.mmread(tmp_path / "conv.mtx")
    expected = tc.conv1d_matrix(W, 6, groups=2, stride=2, padding=1, padding_mode="reflect")
    np.testing.assert_array_equal(M.toarray(), expected.toarray())


def test_subprocess_bad_input():
    proc = run("show", "--weight", "4,3", "--length", "5", "--stride", "0")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert one_error_line(proc.stderr) == (
        "toeplitz-conv: error: --stride must be an integer >= 1, got 0"
    )
    proc = run("show", "--weight", "4,3")
    assert proc.returncode == 2
    one_error_line(proc.stderr)


# --------------------------------------------------------------------------- in-process
def test_show_seed_in_process(capsys):
    assert cli.main(["show", "--weight", "4,3", "--length", "5"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    header, formula_text, matrix = out.split("\n\n")
    assert header.splitlines() == [
        "conv1d: x (C_in=1, L=5) -> y (C_out=1, L_out=4)",
        "weight (C_out, C_in/groups, K) = (1, 1, 2) = [4, 3]",
        "stride=1, padding=(0, 0), dilation=1, groups=1, padding_mode='zeros'",
        "M: 4 x 5 = (C_out*L_out) x (C_in*L), vec(y) = M @ vec(x)",
    ]
    assert formula_text == tc.formula([4.0, 3.0], 5)
    assert matrix == SEED_MATRIX


def test_show_multichannel_labels_and_values(capsys, tmp_path):
    W = np.arange(1.0, 13).reshape(4, 1, 3)
    np.save(tmp_path / "w.npy", W)
    args = ["--weight", str(tmp_path / "w.npy"), "--length", "6", "--groups", "2"]
    assert cli.main(["show", *args, "--padding", "1", "--padding-mode", "reflect"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    M = tc.conv1d_matrix(W, 6, groups=2, padding=1, padding_mode="reflect")
    start = lines.index(f"M ({M.nnz} nonzeros, '.' = 0):")
    assert lines[start + 1].split() == [f"x[{c},{n}]" for c in range(2) for n in range(6)]
    rows = lines[start + 2 :]
    assert [r.split()[0] for r in rows] == [f"y[{o},{i}]" for o in range(4) for i in range(6)]
    M = M.toarray()
    shown = np.array([[0 if c == "." else float(c) for c in r.split()[1:]] for r in rows])
    np.testing.assert_array_equal(shown, M)


def test_show_transpose(capsys):
    assert cli.main(
        ["show", "--weight", "1,2,3", "--length", "4", "--transpose", "--stride", "2",
         "--padding", "1", "--output-padding", "1"]
    ) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("conv_transpose1d: z (C_in=1, L_in=4) -> y (C_out=1, L'=8)\n")
    assert "M: 8 x 4 = (C_out*L') x (C_in*L_in), vec(y) = M @ vec(z)" in out
    lines = out.splitlines()
    start = lines.index("M (11 nonzeros, '.' = 0):")
    assert lines[start + 1].split() == ["z[0]", "z[1]", "z[2]", "z[3]"]
    shown = np.array(
        [[0 if c == "." else float(c) for c in r.split()[1:]] for r in lines[start + 2 :]]
    )
    expected = tc.conv_transpose1d_matrix([1, 2, 3], 4, stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(shown, expected.toarray())


def test_show_large_gives_summary(capsys):
    argv = ["show", "--weight", "1,2,3", "--length", "400", "--padding", "same"]
    assert cli.main([*argv, "--padding-mode", "circular"]) == 0
    out = capsys.readouterr().out
    assert "M (" not in out
    assert "nonzeros: 1,200 of 160,000 (0.75% dense); per row: min 3, max 3" in out
    assert "structure: circulant" in out
    assert "storage: CSR 16.0 kB (float64 values, int32 indices); dense would be 1.3 MB" in out
    spy = out.split("block):\n")[1].splitlines()
    assert len(spy) == 16 and spy[0].startswith("  ###") and spy[0].endswith("#")
    # --max-size lifts the limit; a multi-channel summary names the blocks
    assert cli.main(["show", "--weight", "1,2", "--length", "40", "--max-size", "40"]) == 0
    assert "M (78 nonzeros" in capsys.readouterr().out


def test_show_block_structure(capsys, tmp_path):
    np.save(tmp_path / "w.npy", np.ones((4, 2, 3)))
    argv = ["show", "--weight", str(tmp_path / "w.npy"), "--length", "50", "--groups", "2"]
    assert cli.main([*argv, "--padding", "1", "--padding-mode", "replicate"]) == 0
    out = capsys.readouterr().out
    assert (
        "structure: banded block-Toeplitz, with the first/last rows folded by replicate "
        "padding; 4 x 4 blocks of 50 x 50, block-diagonal over groups=2"
    ) in out


def test_show_latex(capsys):
    assert cli.main(["show", "--weight", "4,3", "--length", "5", "--latex"]) == 0
    out = capsys.readouterr().out
    assert tc.formula([4, 3], 5, style="latex") in out
    assert "floor(" not in out


@pytest.mark.parametrize("ext", [".npz", ".mtx", ".mat"])
def test_export_formats(capsys, tmp_path, ext):
    out_file = tmp_path / f"m{ext}"
    argv = ["export", "--weight", "1,-2,1", "--length", "9", "--stride", "2", "--padding", "1,0"]
    assert cli.main([*argv, "--out", str(out_file)]) == 0
    assert f"wrote {out_file}: 4 x 9, 11 nonzeros" in capsys.readouterr().out
    expected = tc.conv1d_matrix([1.0, -2.0, 1.0], 9, stride=2, padding=(1, 0)).toarray()
    if ext == ".npz":
        got = sp.load_npz(out_file)
    elif ext == ".mtx":
        got = scipy.io.mmread(out_file)
        record = json.loads(out_file.read_text().splitlines()[1].removeprefix("%toeplitz_conv "))
        assert record["params"] == {
            "op": "conv1d",
            "weight_shape": [1, 1, 3],
            "input_length": 9,
            "stride": 2,
            "padding": [1, 0],
            "dilation": 1,
            "groups": 1,
            "padding_mode": "zeros",
            "weight": [1.0, -2.0, 1.0],
        }
    else:
        got = scipy.io.loadmat(out_file)["M"]
    np.testing.assert_array_equal(got.toarray(), expected)


def test_export_transpose(capsys, tmp_path):
    out_file = tmp_path / "t.npz"
    argv = ["export", "--weight", "4,3", "--length", "3", "--transpose", "--stride", "2"]
    assert cli.main([*argv, "--output-padding", "1", "--out", str(out_file)]) == 0
    expected = tc.conv_transpose1d_matrix([4.0, 3.0], 3, stride=2, output_padding=1)
    np.testing.assert_array_equal(tc.load_matrix(out_file).toarray(), expected.toarray())


BAD = [
    (["show", "--weight", "4,x", "--length", "5"], "--weight: expected comma-separated numbers"),
    (["show", "--weight", "nope.npy", "--length", "5"], "--weight: no such file 'nope.npy'"),
    (["show", "--weight", "4,3", "--length", "0"], "--length must be an integer >= 1, got 0"),
    (["show", "--weight", "4,3", "--length", "x"], "argument --length: invalid int value: 'x'"),
    (["show", "--weight", "4,3", "--length", "5", "--padding", "1,2,3"], "--padding: expected"),
    (["show", "--weight", "4,3", "--length", "5", "--padding=-1"], "--padding must be an integer"),
    (
        ["show", "--weight", "4,3", "--length", "1", "--padding", "1", "--padding-mode", "reflect"],
        "--padding-mode='reflect' needs padding < input_length",
    ),
    (["show", "--weight", "4,3", "--length", "5", "--groups", "2"], "--groups=2 must divide"),
    (
        ["show", "--weight", "4,3", "--length", "5", "--output-padding", "1"],
        "--output-padding is for --transpose only",
    ),
    (
        ["show", "--weight", "4,3", "--length", "5", "--transpose", "--padding-mode", "circular"],
        "--padding-mode: a transposed convolution supports only 'zeros'",
    ),
    (["show", "--weight", "4,3,2,1,5,6", "--length", "3"], "the output would be empty"),
    (["show", "--weight", "4,3", "--length", "5", "--max-size", "-1"], "--max-size must be >= 0"),
    (["export", "--weight", "4,3", "--length", "5", "--out", "m.txt"], "--out must end in one of"),
    (["analyze", "--weight", "4,3", "--length", "5", "-k", "0"], "-k must be >= 1"),
    (
        ["analyze", "--weight", "4,3", "--length", "5", "--plot", "x.jpg"],
        "--plot: the picture is a PNG",
    ),
    (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_input_one_line(capsys, argv, message):
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in one_error_line(err)


def test_npy_weight_errors(capsys, tmp_path):
    np.save(tmp_path / "w2.npy", np.ones((2, 3)))
    (tmp_path / "bad.npy").write_bytes(b"garbage")
    assert cli.main(["show", "--weight", str(tmp_path / "w2.npy"), "--length", "5"]) == 2
    assert "--weight must have shape (C_out, C_in/groups, K) or (K,)" in one_error_line(
        capsys.readouterr().err
    )
    assert cli.main(["show", "--weight", str(tmp_path / "bad.npy"), "--length", "5"]) == 2
    assert "bad.npy' is not a .npy file" in one_error_line(capsys.readouterr().err)


def test_unwritable_output_exit_1(capsys, tmp_path):
    out_file = tmp_path / "missing" / "m.mtx"
    assert cli.main(["export", "--weight", "4,3", "--length", "5", "--out", str(out_file)]) == 1
    assert "the directory" in one_error_line(capsys.readouterr().err)


def test_help_and_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"toeplitz-conv {tc.__version__}\n"
    assert cli.main(["show", "--help"]) == 0
    assert "--padding-mode" in capsys.readouterr().out


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_broken_pipe_is_quiet(capsys, monkeypatch):
    """``toeplitz-conv show ... | head``: no traceback, no error line, status 1."""
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert cli.main(["show", "--weight", "4,3", "--length", "5"]) == 1
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- progress
class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_after_the_delay(monkeypatch):
    monkeypatch.setattr(_progress, "PROGRESS_DELAY", 0.0)
    monkeypatch.setattr(_progress, "PROGRESS_INTERVAL", 0.01)
    tty = _FakeTTY()
    with _progress.Progress(tty).step("working"):
        import time

        time.sleep(0.05)
    assert "toeplitz-conv: working ... " in tty.getvalue()
    assert tty.getvalue().endswith(" s\n") and "done in" in tty.getvalue()

    pipe = io.StringIO()  # not a terminal: silent
    with _progress.Progress(pipe).step("working"):
        time.sleep(0.05)
    assert pipe.getvalue() == ""

    monkeypatch.setattr(_progress, "PROGRESS_DELAY", 10.0)  # quick work: silent on a terminal too
    quick = _FakeTTY()
    with _progress.Progress(quick).step("working"):
        pass
    assert quick.getvalue() == ""


# --------------------------------------------------------------------------- analyze
def test_analyze(capsys):
    argv = ["analyze", "--weight", "1,2,1", "--length", "16", "--padding", "same"]
    assert cli.main([*argv, "--padding-mode", "circular", "-k", "3"]) == 0
    out = capsys.readouterr().out
    # circulant: singular values |w^(f)| = |1 + 2 e^{-2 pi i f/16} + e^{-4 pi i f/16}|,
    # largest 4 (f = 0)
    sv = np.sort(np.abs(np.fft.fft([2.0, 1.0] + [0.0] * 13 + [1.0])))[::-1]
    assert "spectral norm  ||M||_2 = 4\n" in out
    largest = out.split("largest  3 singular values: ")[1].splitlines()[0]
    np.testing.assert_allclose([float(s) for s in largest.split(", ")], sv[:3], rtol=1e-6)
    assert "bounds" in out and "condition" in out


def test_analyze_transpose(capsys):
    argv = ["analyze", "--weight", "4,3,1", "--length", "5", "--transpose", "--stride", "2"]
    assert cli.main([*argv, "--padding", "1", "--output-padding", "1", "-k", "9"]) == 0
    out = capsys.readouterr().out
    M = tc.conv_transpose1d_matrix([4, 3, 1], 5, stride=2, padding=1, output_padding=1)
    sv = np.linalg.svd(M.toarray(), compute_uv=False)
    assert "largest  5 singular values" in out  # all min(m, n) = 5 of them
    listed = out.split("largest  5 singular values: ")[1].splitlines()[0]
    np.testing.assert_allclose([float(v) for v in listed.split(", ")], sv, rtol=1e-5)
    argv = ["analyze", "--weight", "4,3", "--length", "4", "--transpose", "--dilation", "3"]
    assert cli.main([*argv, "--output-padding", "2"]) == 2
    assert "needs --output-padding < --stride" in one_error_line(capsys.readouterr().err)


def test_analyze_plot_writes_png(capsys, tmp_path):
    require_plot()
    png = tmp_path / "analyze.png"
    argv = ["analyze", "--weight", "1,-2,1", "--length", "48", "--padding", "1"]
    assert cli.main([*argv, "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    assert os.listdir(tmp_path) == ["analyze.png"]


def test_analyze_plot_without_matplotlib(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = ["analyze", "--weight", "1,2", "--length", "8", "--plot", str(tmp_path / "a.png")]
    assert cli.main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "--plot needs matplotlib" in line and "pip install toeplitz_conv[plot]" in line
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- weight files, --plot
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.txt", b"4,3\n", "'{path}' is not a .npy file (it is another format, without numpy's"),
        ("w.npy", b"4,3\n", "'{path}' is not a .npy file (it is another format"),
        ("w.npz", None, "'{path}' is not a .npy file (it is a .npz archive"),
        ("o.npy", "object", "cannot read '{path}' as a .npy array: it holds Python objects, not"),
        # numpy's reason differs between versions: only our part of the line is pinned
        ("t.npy", "truncated", "cannot read '{path}' as a .npy array: "),
    ],
)
def test_weight_file_errors_name_the_file(capsys, tmp_path, name, content, message):
    """numpy's allow_pickle advice used to leak into the message (issue 8)."""
    path = tmp_path / name
    if content is None:
        np.savez(path, w=np.ones(3))
    elif content == "object":
        np.save(path, np.array([1, None], dtype=object), allow_pickle=True)
    elif content == "truncated":
        np.save(path, np.ones((2, 2, 3)))
        path.write_bytes(path.read_bytes()[:-10])
    else:
        path.write_bytes(content)
    assert cli.main(["show", "--weight", str(path), "--length", "5"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--weight: " + message.format(path=path) in line
    assert "allow_pickle" not in line


@pytest.mark.parametrize("where", ["missing-dir", "is-a-dir", "no-permission"])
def test_plot_path_checked_before_the_analysis(capsys, tmp_path, monkeypatch, where):
    """An unwritable --plot used to fail only after the whole analysis had run (issue 8)."""
    require_plot()
    from toeplitz_conv import spectral

    def not_reached(*args, **kwargs):
        raise AssertionError("the analysis ran before the --plot path was checked")

    monkeypatch.setattr(spectral, "spectral_norm", not_reached)
    target = tmp_path / "s.png"
    if where == "missing-dir":
        target = tmp_path / "missing" / "s.png"
        message = "the directory '{}' does not exist".format(tmp_path / "missing")
    elif where == "is-a-dir":
        target.mkdir()
        message = "it is a directory"
    else:
        real_access = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode)
        )  # root may write anywhere: the check is what is tested here
        message = f"no permission to create files in '{tmp_path}'"
    argv = ["analyze", "--weight", "4,3", "--length", "6", "--plot", str(target)]
    assert cli.main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot write '{target}'" in line and message in line


# --------------------------------------------------------------------------- N-d
def _shown_matrix(out: str, nnz: int):
    """The printed matrix: (row labels, column labels, values), the block fences dropped."""
    lines = out.splitlines()
    start = lines.index(f"M ({nnz} nonzeros, '.' = 0):")
    cols = [c for c in lines[start + 1].split() if c != "|"]
    labels, values = [], []
    for row in lines[start + 2 :]:
        if set(row.strip()) <= {"-", "+"}:  # a fence between Toeplitz blocks
            continue
        cells = [c for c in row.split() if c != "|"]
        labels.append(cells[0])
        values.append([0.0 if c == "." else float(c) for c in cells[1:]])
    return labels, cols, np.array(values)


SHOW_2D_HEADER = [
    "conv2d: x (C_in=1, H=4, W=4) -> y (C_out=1, H_out=4, W_out=4)",
    "weight (C_out, C_in/groups, K_1, K_2) = (1, 1, 3, 3) = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]",
    "stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1, padding_mode='zeros'",
    "M: 16 x 16 = (C_out*H_out*W_out) x (C_in*H*W), vec(y) = M @ vec(x) "
    "(row-major over channel, H, W)",
]


def test_show_2d(capsys):
    """A 3x3 kernel on a 4x4 image: header, formula, the BTTB matrix with y[i,j]/x[k,l]."""
    assert (
        cli.main(["show", "--weight", "1,2,3;4,5,6;7,8,9", "--size", "4x4", "--padding", "1"]) == 0
    )
    out, err = capsys.readouterr()
    assert err == ""
    header, formula_text, matrix = out.split("\n\n")
    assert header.splitlines() == SHOW_2D_HEADER
    W = np.arange(1.0, 10).reshape(3, 3)
    assert formula_text == tc.formula(W, (4, 4), padding=1)
    rows, cols, shown = _shown_matrix(out, 100)
    assert rows == [f"y[{i},{j}]" for i in range(4) for j in range(4)]
    assert cols == [f"x[{k},{l}]" for k in range(4) for l in range(4)]
    np.testing.assert_array_equal(shown, tc.conv2d_matrix(W, 4, padding=1).toarray())
    lines = matrix.splitlines()
    # BTTB made visible: a fence after every 4 columns and every 4 rows
    assert lines[1].count(" | ") == 3 and lines[6].strip().count("+") == 3
    assert lines[6].strip().strip("-+") == ""
    assert [n for n, ln in enumerate(lines) if "+" in ln] == [6, 11, 16]


def test_show_2d_channels_and_per_axis_options(capsys, tmp_path):
    W = np.arange(1.0, 17).reshape(4, 1, 2, 2)
    np.save(tmp_path / "w.npy", W)
    argv = ["show", "--weight", str(tmp_path / "w.npy"), "--size", "3x4", "--groups", "2"]
    argv += ["--stride", "1x2", "--padding", "0x1,0", "--dilation", "2x1"]
    assert cli.main([*argv, "--padding-mode", "replicate"]) == 0
    out = capsys.readouterr().out
    settings = dict(stride=(1, 2), padding=(0, (1, 0)), dilation=(2, 1), groups=2)
    M = tc.conv2d_matrix(W, (3, 4), padding_mode="replicate", **settings)
    assert out.splitlines()[:3] == [
        "conv2d: x (C_in=2, H=3, W=4) -> y (C_out=4, H_out=1, W_out=2)",
        "weight (C_out, C_in/groups, K_1, K_2) = (4, 1, 2, 2)",
        "stride=(1, 2), padding=((0, 0), (1, 0)), dilation=(2, 1), groups=2, "
        "padding_mode='replicate'",
    ]
    assert tc.formula(W, (3, 4), padding_mode="replicate", **settings) in out
    rows, cols, shown = _shown_matrix(out, M.nnz)
    assert rows == [f"y[{o},0,{j}]" for o in range(4) for j in range(2)]
    assert cols == [f"x[{c},{k},{l}]" for c in range(2) for k in range(3) for l in range(4)]
    np.testing.assert_array_equal(shown, M.toarray())


def test_show_3d_and_size_of_one_axis(capsys, tmp_path):
    W = np.arange(1.0, 9).reshape(1, 1, 2, 2, 2)
    np.save(tmp_path / "w3.npy", W)
    argv = ["show", "--weight", str(tmp_path / "w3.npy"), "--size", "2x2x3"]
    assert cli.main([*argv, "--padding", "0x0x1,0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("conv3d: x (C_in=1, D=2, H=2, W=3) -> y (C_out=1, D_out=1, H_out=1, ")
    M = tc.conv3d_matrix(W, (2, 2, 3), padding=(0, 0, (1, 0)))
    assert tc.formula(W, (2, 2, 3), padding=(0, 0, (1, 0))) in out
    rows, cols, shown = _shown_matrix(out, M.nnz)
    assert rows == ["y[0,0,0]", "y[0,0,1]", "y[0,0,2]"]
    assert cols == [f"x[{a},{b},{c}]" for a in range(2) for b in range(2) for c in range(3)]
    np.testing.assert_array_equal(shown, M.toarray())
    # --size with one integer is --length: the same output, byte for byte
    assert cli.main(["show", "--weight", "4,3", "--size", "5"]) == 0
    by_size = capsys.readouterr().out
    assert cli.main(["show", "--weight", "4,3", "--length", "5"]) == 0
    assert by_size == capsys.readouterr().out and by_size.endswith(SEED_MATRIX)


def test_show_2d_transpose(capsys):
    argv = ["show", "--weight", "1,2;3,4", "--size", "2x3", "--transpose", "--stride", "2x1"]
    assert cli.main([*argv, "--output-padding", "1x0", "--padding", "0x1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == [
        "conv_transpose2d: z (C_in=1, H_in=2, W_in=3) -> y (C_out=1, H'=5, W'=2)",
        "weight (C_in, C_out/groups, K_1, K_2) = (1, 1, 2, 2) = [[1, 2], [3, 4]]",
        "stride=(2, 1), padding=((0, 0), (1, 1)), output_padding=(1, 0), dilation=(1, 1), groups=1",
    ]
    settings = dict(stride=(2, 1), padding=(0, 1), output_padding=(1, 0))
    M = tc.conv_transpose2d_matrix(np.array([[1.0, 2.0], [3.0, 4.0]]), (2, 3), **settings)
    rows, cols, shown = _shown_matrix(out, M.nnz)
    assert rows == [f"y[{i},{j}]" for i in range(5) for j in range(2)]
    assert cols == [f"z[{i},{j}]" for i in range(2) for j in range(3)]
    np.testing.assert_array_equal(shown, M.toarray())


def test_show_2d_large_summary(capsys):
    argv = ["show", "--weight", "1,2,1;2,4,2;1,2,1", "--size", "16x16", "--padding", "same"]
    assert cli.main([*argv, "--padding-mode", "circular"]) == 0
    out = capsys.readouterr().out
    assert "M (" not in out
    assert "structure: block-circulant with circulant blocks (BCCB)" in out
    assert "nonzeros: 2,304 of 65,536" in out
    argv = ["show", "--weight", "1,2;3,4", "--size", "8x8", "--stride", "2"]
    assert cli.main([*argv, "--padding", "1"]) == 0
    assert "structure: block-Toeplitz with Toeplitz blocks (BTTB), strided\n" in (
        capsys.readouterr().out
    )
    # no padding and L_out * s == L: one period of output, circulant by the library's rule
    assert cli.main(argv) == 0
    assert "structure: block-circulant with circulant blocks (BCCB), strided (its rows at " in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("ext", [".npz", ".mtx"])
def test_export_2d_3d(capsys, tmp_path, ext):
    W = np.arange(1.0, 25).reshape(2, 3, 2, 2)
    np.save(tmp_path / "w.npy", W)
    out_file = tmp_path / f"m{ext}"
    argv = ["export", "--weight", str(tmp_path / "w.npy"), "--size", "4x5", "--stride", "2x1"]
    assert cli.main([*argv, "--padding", "1x0,2", "--out", str(out_file)]) == 0
    expected = tc.conv2d_matrix(W, (4, 5), stride=(2, 1), padding=(1, (0, 2)))
    assert f"wrote {out_file}: {expected.shape[0]} x {expected.shape[1]}, " in (
        capsys.readouterr().out
    )
    np.testing.assert_array_equal(tc.load_matrix(out_file).toarray(), expected.toarray())
    if ext == ".mtx":
        record = json.loads(out_file.read_text().splitlines()[1].removeprefix("%toeplitz_conv "))
        assert record["params"] == {
            "op": "conv2d",
            "weight_shape": [2, 3, 2, 2],
            "input_size": [4, 5],
            "stride": [2, 1],
            "padding": [[1, 1], [0, 2]],
            "dilation": [1, 1],
            "groups": 1,
            "padding_mode": "zeros",
            "weight": W.ravel().tolist(),
        }
    # 3-D, transposed
    W3 = np.arange(1.0, 17).reshape(2, 1, 2, 2, 2)
    np.save(tmp_path / "w3.npy", W3)
    out3 = tmp_path / f"t{ext}"
    argv = ["export", "--weight", str(tmp_path / "w3.npy"), "--size", "2x3x2", "--transpose"]
    assert cli.main([*argv, "--stride", "2", "--output-padding", "1x0x1", "--out", str(out3)]) == 0
    expected = tc.conv_transpose3d_matrix(W3, (2, 3, 2), stride=2, output_padding=(1, 0, 1))
    np.testing.assert_array_equal(tc.load_matrix(out3).toarray(), expected.toarray())
    if ext == ".mtx":
        record = json.loads(out3.read_text().splitlines()[1].removeprefix("%toeplitz_conv "))
        assert record["params"]["op"] == "conv_transpose3d"
        assert record["params"]["output_padding"] == [1, 0, 1]
        assert record["params"]["input_size"] == [2, 3, 2]


BAD_ND = [
    (["--stride", "2x0"], "--stride (axis 1) must be an integer >= 1, got 0"),
    (["--stride", "2x1x1"], "--stride must be an int or a tuple of 2 ints"),
    (["--stride", "ax1"], "--stride: expected an integer or one per axis separated by 'x'"),
    (["--dilation", "0x1"], "--dilation (axis 0) must be an integer >= 1, got 0"),
    (["--dilation", "1.5"], "--dilation: expected an integer or one per axis"),
    (["--padding", "1x2x3"], "--padding: 3 items separated by 'x' for a 2-D layer"),
    (["--padding", "1,2,3x1"], "--padding: expected an integer, a pair 'left,right'"),
    (["--padding", "1x-1"], "--padding (axis 1) must be an integer >= 0, got -1"),
    (["--padding", "same", "--stride", "1x2"], "--padding='same' requires --stride (axis 1)=1"),
    (["--padding", "3", "--padding-mode", "reflect"], "--padding-mode='reflect' needs padding <"),
    (["--output-padding", "1x0"], "--output-padding is for --transpose only"),
    (
        ["--transpose", "--output-padding", "0x1"],
        "--output-padding (axis 1) must be smaller than max(stride, dilation)",
    ),
    (["--transpose", "--output-padding", "0x1x0"], "--output-padding must be an int or a tuple"),
    (["--size", "3x0"], "--size (axis 1) must be an integer >= 1, got 0"),
    (["--size", "3xa"], "--size: expected the input size, one integer per spatial axis"),
    (["--size", "2x2x2x2"], "--size: 1, 2 or 3 spatial axes; got 4"),
    (["--size", "2x1"], "the output would be empty on axis 1"),
    (["--size", "3x3x3"], "--size 3x3x3 gives 3 spatial axes, but --weight has shape (2, 2)"),
    (["--weight", "1,2", "--size", "0"], "--size must be an integer >= 1, got 0"),
    (["--size", "3", "--length", "3"], "argument --length: not allowed with argument --size"),
    (["--weight", "1,2;3"], "--weight: the rows of a 2-D kernel (separated by ';') must have"),
    (["--weight", "1,2;3,y"], "--weight: expected comma-separated numbers"),
    (["--weight", "1,2,3"], "--size 3x3 gives 2 spatial axes, but --weight has shape (3,)"),
    (["--weight", "1,2", "--size", "3x3", "--groups", "2"], "--size 3x3 gives 2 spatial axes"),
    (["--groups", "2"], "--groups=2 must divide the output channels C_out=1"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_ND)
def test_bad_nd_input_one_line(capsys, extra, message):
    argv = ["show", "--weight", "1,2;3,4", "--size", "3x3"]  # `extra` may repeat: last wins
    assert cli.main([*argv, *extra]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in one_error_line(err)


def test_one_line_names_axes():
    exc = ValueError("`stride[1]` must be an integer >= 1, got 0; `kernel_size[0]` and `other`")
    assert _errors.one_line(exc) == (
        "--stride (axis 1) must be an integer >= 1, got 0; `kernel_size[0]` and `other`"
    )


def _dense_spectral(monkeypatch, calls):
    """A stand-in for ``spectral.analyze``: the dense SVD of the matrix it is asked about.

    It records the arguments the command passes (input size, per-axis parameters), whatever
    the library's own N-d spectral support.
    """
    from toeplitz_conv import spectral

    def analyze(weight, input_size, *, k=6, tol=None, time_limit=None, **kw):
        calls.append((np.shape(weight), input_size, kw))
        M = tc.conv_matrix(weight, input_size, format="dense", **kw)
        s = np.linalg.svd(M, compute_uv=False)
        bounds = spectral.NormBounds(s[0], s[0])
        methods = dict.fromkeys(("norm", "condition_number", "singular_values"), "dense")
        return spectral.Analysis(M.shape, s[0], bounds, s[0] / s[-1], s[:k], 0 * s[:k], methods)

    monkeypatch.setattr(spectral, "analyze", analyze)


def test_analyze_2d_passes_the_layer(capsys, monkeypatch):
    calls = []
    _dense_spectral(monkeypatch, calls)
    argv = ["analyze", "--weight", "1,2;3,4", "--size", "5x6", "--stride", "2x1"]
    assert cli.main([*argv, "--padding", "1x0,1", "-k", "3"]) == 0
    out = capsys.readouterr().out
    settings = dict(stride=(2, 1), padding=(1, (0, 1)))
    s = np.linalg.svd(
        tc.conv2d_matrix(np.array([[1.0, 2.0], [3.0, 4.0]]), (5, 6), **settings).toarray(),
        compute_uv=False,
    )
    assert out.startswith("conv2d: x (C_in=1, H=5, W=6) -> y (C_out=1, H_out=3, W_out=6)\n")
    assert f"spectral norm  ||M||_2 = {s[0]:.10g}\n" in out
    listed = out.split("largest  3 singular values: ")[1].splitlines()[0]
    np.testing.assert_allclose([float(v) for v in listed.split(", ")], s[:3], rtol=1e-5)
    assert f"condition      sigma_max / sigma_min = {s[0] / s[-1]:.6g}" in out
    assert calls[0][1] == (5, 6) and calls[0][2]["stride"] == (2, 1)
    # a transposed layer: the conv on L' it transposes, with the same singular values
    calls.clear()
    argv = ["analyze", "--weight", "1,2;3,4", "--size", "3x3", "--transpose", "--stride", "2"]
    assert cli.main([*argv, "--output-padding", "1x0"]) == 0
    out = capsys.readouterr().out
    Mt = tc.conv_transpose2d_matrix(np.array([[1.0, 2.0], [3.0, 4.0]]), 3, stride=2,
                                    output_padding=(1, 0))  # fmt: skip
    st = np.linalg.svd(Mt.toarray(), compute_uv=False)
    assert f"spectral norm  ||M||_2 = {st[0]:.10g}\n" in out
    assert calls[0][1] == (7, 6)
    argv = ["analyze", "--weight", "1,2;3,4", "--size", "3x3", "--transpose", "--stride", "2x1"]
    assert cli.main([*argv, "--output-padding", "0x1", "--dilation", "1x2"]) == 2
    assert "needs --output-padding < --stride on every axis" in one_error_line(
        capsys.readouterr().err
    )


def test_analyze_2d_with_the_library_spectral_functions(capsys):
    """The same analysis as 1-D, by the library's N-d spectral functions, against a dense SVD."""
    w = np.random.default_rng(3).standard_normal((2, 2, 3, 3))
    argv = ["analyze", "--weight", "-", "--size", "6x5", "--padding", "1", "-k", "2"]
    with _weight_file(w) as path:
        argv[2] = path
        assert cli.main(argv) == 0
    out = capsys.readouterr().out
    s = np.linalg.svd(tc.conv2d_matrix(w, (6, 5), padding=1, format="dense"), compute_uv=False)
    norm = float(out.split("||M||_2 = ")[1].split()[0])
    assert norm == pytest.approx(s[0], rel=1e-9)
    bounds = out.split("bounds         ")[1].splitlines()[0]
    lo, hi = (float(v) for v in bounds.split(" <= ||M||_2 <= "))
    assert lo <= s[0] * (1 + 1e-9) and hi >= s[0] * (1 - 1e-9)  # printed to 10 digits
    cond = float(out.split("sigma_max / sigma_min = ")[1].split()[0])
    assert cond == pytest.approx(s[0] / s[-1], rel=1e-5)
    listed = out.split("largest  2 singular values: ")[1].splitlines()[0]
    np.testing.assert_allclose([float(v) for v in listed.split(", ")], s[:2], rtol=1e-5)


@contextlib.contextmanager
def _weight_file(w):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "w.npy")
        np.save(path, w)
        yield path


def test_analyze_plot_2d(capsys, monkeypatch, tmp_path):
    require_plot()
    _dense_spectral(monkeypatch, [])
    png = tmp_path / "a2.png"
    np.save(tmp_path / "w.npy", np.ones((2, 2, 3, 3)))
    argv = ["analyze", "--weight", str(tmp_path / "w.npy"), "--size", "6x6", "--padding", "1"]
    assert cli.main([*argv, "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    assert sorted(os.listdir(tmp_path)) == ["a2.png", "w.npy"]


def test_readme_show_examples_are_what_the_command_prints(capsys):
    """Every ``$ toeplitz-conv show ...`` block in README.md and docs/ is the real output."""
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    blocks = re.findall(r"```console\n\$ toeplitz-conv (show [^\n]*)\n(.*?)```", text, re.S)
    assert len(blocks) >= 2  # the 1-D seed and the 2-D example
    for command, printed in blocks:
        assert cli.main(shlex.split(command)) == 0
        assert capsys.readouterr().out == printed, command


def test_analyze_beyond_the_dense_limit_answers_within_its_budget(capsys, monkeypatch, tmp_path):
    """Issue 8 (2): every iterative step has a time limit; running out is a warning, not a hang."""
    from toeplitz_conv.spectral import _method

    monkeypatch.setattr(_method, "DENSE_LIMIT", 100)
    w = np.random.default_rng(40).standard_normal((2, 2, 3))
    np.save(tmp_path / "w.npy", w)
    argv = ["analyze", "--weight", str(tmp_path / "w.npy"), "--length", "150", "--padding", "1"]
    argv += ["-k", "3"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    M = tc.conv1d_matrix(w, 150, padding=1, format="dense")
    sv = np.linalg.svd(M, compute_uv=False)
    listed = captured.out.split("largest  3 singular values: ")[1].splitlines()[0]
    np.testing.assert_allclose([float(v) for v in listed.split(", ")], sv[:3], rtol=1e-5)
    assert "(sigma_min by shift-invert block Krylov on a sparse LU)" in captured.out
    cond = float(captured.out.split("sigma_max / sigma_min = ")[1].split()[0])
    assert cond == pytest.approx(sv[0] / sv[-1], rel=1e-5)
    assert "warning" not in captured.err
    # a budget too small to converge: the values reached, and a warning that says so
    monkeypatch.setattr(_commands, "TIME_LIMIT", 1e-9)
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "largest  3 singular values: " in captured.out
    assert "warning: analyze: the top singular values by block Krylov ran out of its budget" in (
        captured.err
    )


# --------------------------------------------------------------------------- summary, structure
def _spy_reference(M):
    """The picture the summary draws, from the assembled matrix."""
    m, n = M.shape
    rb, cb = -(-m // _summary.SPY_ROWS), -(-n // _summary.SPY_COLS)
    grid = np.zeros((-(-m // rb), -(-n // cb)), dtype=bool)
    coo = M.tocoo()
    grid[coo.row // rb, coo.col // cb] = True
    return [f"pattern ('#' = nonzeros in a {rb} x {cb} block):"] + [
        "  " + "".join("#" if b else "." for b in row) for row in grid
    ]


SUMMARY_CASES = [
    ["--weight", "1,2,3", "--length", "400", "--padding", "same", "--padding-mode", "circular"],
    ["--weight", "W", "--length", "50", "--groups", "2", "--padding", "1", "--padding-mode",
     "replicate"],
    ["--weight", "W", "--length", "61", "--stride", "3", "--dilation", "2", "--padding", "2,0",
     "--padding-mode", "reflect"],
    ["--weight", "W", "--length", "37", "--stride", "2", "--transpose", "--output-padding", "1",
     "--groups", "2"],
    ["--weight", "W2", "--size", "9x13", "--stride", "2x1", "--padding", "1x0,2",
     "--padding-mode", "reflect"],
    ["--weight", "W2", "--size", "7x6", "--stride", "2", "--transpose", "--padding", "1"],
    ["--weight", "W3", "--size", "5x6x4", "--padding", "1", "--padding-mode", "circular"],
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(SUMMARY_CASES)))
def test_summary_from_the_pattern_matches_the_matrix(capsys, tmp_path, case):
    """The summary no longer assembles M; it must say what M would."""
    rng = np.random.default_rng(case)
    files = {
        "W": rng.standard_normal((4, 2, 3)),
        "W2": rng.standard_normal((4, 2, 3, 2)),
        "W3": rng.standard_normal((2, 3, 3, 2, 3)).astype(np.float32),
    }
    argv = SUMMARY_CASES[case]
    for key, w in files.items():
        np.save(tmp_path / f"{key}.npy", w)
    argv = [str(tmp_path / f"{a}.npy") if a in files else a for a in argv]
    assert cli.main(["show", *argv, "--max-size", "0"]) == 0
    out = capsys.readouterr().out
    args = _options.build_parser().parse_args(["show", *argv])
    M = layer_matrix(_parse.layer_of(args), transpose=args.transpose)
    per_row = np.diff(M.indptr)
    m, n = M.shape
    assert (
        f"nonzeros: {M.nnz:,} of {m * n:,} ({100 * M.nnz / (m * n):.3g}% dense); "
        f"per row: min {per_row.min()}, max {per_row.max()}"
    ) in out
    stored = M.data.nbytes + M.indices.nbytes + M.indptr.nbytes
    assert (
        f"storage: CSR {_summary.byte_size(stored)} ({M.dtype} values, {M.indices.dtype} indices)"
        in out
    )
    assert out.rstrip("\n").splitlines()[-len(_spy_reference(M)) :] == _spy_reference(M)


def test_show_summary_does_not_assemble(capsys, monkeypatch):
    """64 -> 64, 3x3 on 56x56 (115M entries) took 2.2 GB to print a summary."""

    def refuse(*args, **kwargs):
        raise AssertionError("the summary assembled the matrix")

    monkeypatch.setattr(_commands, "layer_matrix", refuse)
    w = np.ones((64, 64, 3, 3))
    with contextlib.ExitStack() as stack:
        path = stack.enter_context(_tmp_npy(w))
        assert cli.main(["show", "--weight", path, "--size", "56x56", "--padding", "1"]) == 0
    out = capsys.readouterr().out
    assert f"nonzeros: {64 * 64 * (54 * 54 * 9 + 4 * 54 * 6 + 4 * 4):,} of" in out
    assert "per row: min 256, max 576" in out


@contextlib.contextmanager
def _tmp_npy(w):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "w.npy")
        np.save(path, w)
        yield path


def test_show_refuses_to_print_a_huge_matrix(capsys):
    argv = ["show", "--weight", "1,2,3", "--length", "2000", "--max-size", "5000"]
    assert cli.main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert (
        f"--max-size 5000: the matrix is 1,998 x 2,000, too large to print (at most "
        f"{cli.MAX_PRINT_CELLS:,} entries); lower --max-size for its summary"
    ) in line


@pytest.mark.parametrize(
    ("argv", "structure"),
    [
        # the layer: L_out * s == L with circular padding (method='fft' accepts it)
        (["--weight", "1,2,3", "--length", "40", "--stride", "2", "--padding", "1",
          "--padding-mode", "circular"], "circulant, strided (its rows at stride 2)"),
        (["--weight", "1,2,3", "--length", "40", "--padding", "1", "--padding-mode", "circular"],
         "circulant"),
        (["--weight", "1,2,3", "--length", "40", "--padding", "1,0", "--padding-mode", "circular"],
         "banded Toeplitz, with the first/last rows wrapped around by circular padding"),
        (["--weight", "1,2,3", "--length", "41", "--stride", "2", "--padding", "1",
          "--padding-mode", "circular"], "banded Toeplitz, with the first/last rows wrapped "
         "around by circular padding, strided"),
        (["--weight", "1,2;3,4", "--size", "40x40", "--stride", "2x1", "--padding", "0x1,0",
          "--padding-mode", "circular"], "block-circulant with circulant blocks (BCCB), "
         "strided (its rows at stride 2x1)"),
    ],
)  # fmt: skip
def test_structure_is_the_librarys_circulant(capsys, argv, structure):
    assert cli.main(["show", *argv]) == 0
    assert f"structure: {structure}\n" in capsys.readouterr().out
    layer = _parse.layer_of(_options.build_parser().parse_args(["show", *argv]))
    assert layer.is_circulant == ("Toeplitz" not in structure)
    size, kwargs = layer.arguments()
    if layer.is_circulant:  # the exact FFT spectrum takes exactly these layers
        tc.singular_values(layer.weight, size, method="fft", **kwargs)
    else:
        with pytest.raises(ValueError, match="needs a block-circulant layer"):
            tc.singular_values(layer.weight, size, method="fft", **kwargs)


# --------------------------------------------------------------------------- certified digits
@pytest.mark.parametrize(
    ("lo", "hi", "digits"),
    [
        (2.5, 3.9, 1),  # 44% wide: one digit
        (3.14159, 3.14161, 5),
        (9.0, 18.0, 1),
        (1.0, 1.0, 10),  # exact: the most printed
        (0.999999, 1.000001, 5),
        (123456.0, 123457.0, 5),
        (0.0, 0.0, 10),
        (0.0, 1e-3, 1),
    ],
)
def test_certified_digits(lo, hi, digits):
    assert cli.certified_digits(lo, hi) == digits
    if (
        hi > lo > 0 and math.log10(hi / (hi - lo)) >= 1
    ):  # the bracket is narrower than one unit in the last certified digit
        unit = 10.0 ** (math.floor(math.log10(hi)) - digits + 1)
        assert hi - lo < unit


@pytest.mark.parametrize(
    ("bound", "direction", "want"),
    [
        (2.99999999996, "down", "2.999999999"),  # to nearest would print 3, above the bound
        (2.99999999996, "up", "3"),
        (1.00000000001, "up", "1.000000001"),
        (1.00000000001, "down", "1"),
        (4.0, "down", "4"),
        (0.0, "up", "0"),
        (3.6, "up", "3.6"),  # the float nearest 3.6 is above 3.6; "3.6" reads back as it
    ],
)
def test_directed_bounds_stay_bounds(bound, direction, want):
    text = _render.directed(bound, direction)
    assert text == want
    assert float(text) <= bound if direction == "down" else float(text) >= bound


def test_analyze_prints_only_certified_digits(capsys, monkeypatch):
    """A 44%-wide bracket printed the norm to 10 digits."""
    from toeplitz_conv import spectral

    def analysis(lower, upper):
        def analyze(*args, **kwargs):
            values = np.array([3.1415926535, 1.0])
            bounds = spectral.NormBounds(lower, upper)
            methods = dict.fromkeys(("norm", "condition_number", "singular_values"), "dense")
            return spectral.Analysis(
                (30, 30), 3.1415926535, bounds, 4.0, values, 0 * values, methods
            )

        return analyze

    monkeypatch.setattr(spectral, "analyze", analysis(2.5, 3.6))
    argv = ["analyze", "--weight", "1,2;3,4", "--size", "5x6", "-k", "2"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "spectral norm  ||M||_2 = 3 (to the 1 significant digit its bounds certify)\n" in out
    assert "bounds         2.5 <= ||M||_2 <= 3.6\n" in out
    monkeypatch.setattr(spectral, "analyze", analysis(3.14159, 3.14160))
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "||M||_2 = 3.1416 (to the 5 significant digits its bounds certify)\n" in out


# --------------------------------------------------------------------------- messages
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--weight", "1,2;3,4", "--size", "6"], "--size 6 gives 1 spatial axis, but --weight "
         "has shape (2, 2): a 2-D kernel (K_1, K_2); give one size per spatial axis, like "
         "--size 6x6; or, for a 1-D layer, --weight must have shape (C_out, C_in/groups, K) or "
         "(K,)"),
        (["--weight", "1,2;3,4", "--length", "6"], "--length 6 gives 1 spatial axis"),
        (["--weight", "1,2,3", "--size", "6x6"], "--size 6x6 gives 2 spatial axes, but --weight "
         "has shape (3,): a 1-D kernel (K,); give one size per spatial axis, like --size 6"),
        (["--weight", "W3", "--size", "6x6"], "has shape (2, 3, 3): the weight of a 1-D layer "
         "(C_out, C_in/groups, K) or a 3-D kernel; give one size per spatial axis, like --size 6 "
         "or --size 6x6x6"),
        (["--weight", "W4", "--size", "6x6x6"], "has shape (2, 3, 3, 3): the weight of a 2-D "
         "layer; give one size per spatial axis, like --size 6x6"),
    ],
)  # fmt: skip
def test_size_that_misses_the_weights_axes(capsys, tmp_path, argv, message):
    np.save(tmp_path / "W3.npy", np.ones((2, 3, 3)))
    np.save(tmp_path / "W4.npy", np.ones((2, 3, 3, 3)))
    argv = [str(tmp_path / f"{a}.npy") if a in ("W3", "W4") else a for a in argv]
    assert cli.main(["show", *argv]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("toeplitz-conv: error: --") and message in line


@pytest.mark.parametrize(
    ("error", "status", "prefix"),
    [
        (ValueError("`weight` must not be all zeros"), 2, "toeplitz-conv: error: --weight must"),
        (TypeError("`stride` must be an int"), 2, "toeplitz-conv: error: --stride must be"),
        (IndexError("index 0 is out of bounds"), 1, "toeplitz-conv: internal error: IndexError: "
         "index 0 is out of bounds (a bug in toeplitz_conv"),
    ],
)  # fmt: skip
def test_library_errors_are_one_line(capsys, monkeypatch, error, status, prefix):
    from toeplitz_conv import spectral

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(spectral, "analyze", fail)
    assert cli.main(["analyze", "--weight", "0,0;0,0", "--size", "8x8"]) == status
    assert one_error_line_any(capsys.readouterr().err).startswith(prefix)
    monkeypatch.setenv(cli.TRACEBACK_VARIABLE, "1")
    if status == 1:  # a bug's traceback on request
        with pytest.raises(IndexError):
            cli.main(["analyze", "--weight", "0,0;0,0", "--size", "8x8"])


def one_error_line_any(err: str) -> str:
    """One line on stderr, an error or an internal error, and no traceback."""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_zero_weight_analyze_has_no_traceback():
    """Issue 14.1: `analyze --weight "0,0;0,0" --size 64x64` printed a traceback."""
    proc = run("analyze", "--weight", "0,0;0,0", "--size", "64x64", "-k", "2")
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:  # the library answers: the zero map's singular values are zeros
        assert "spectral norm  ||M||_2 = 0" in proc.stdout
    else:
        one_error_line_any(proc.stderr)


@pytest.mark.parametrize("ext", [".npz", ".mat"])
def test_export_no_compress(capsys, tmp_path, ext):
    argv = ["export", "--weight", "1,-2,1", "--length", "5000", "--padding", "1"]
    assert cli.main([*argv, "--out", str(tmp_path / f"z{ext}")]) == 0
    assert cli.main([*argv, "--out", str(tmp_path / f"u{ext}"), "--no-compress"]) == 0
    capsys.readouterr()
    assert (tmp_path / f"u{ext}").stat().st_size > 3 * (tmp_path / f"z{ext}").stat().st_size
    expected = tc.conv1d_matrix([1.0, -2.0, 1.0], 5000, padding=1).toarray()
    np.testing.assert_array_equal(tc.load_matrix(tmp_path / f"u{ext}").toarray(), expected)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.sampled_from([1, 2, 3]), transpose=st.booleans())
def test_pattern_is_the_matrix_pattern(data, n, transpose):
    """The summary's pattern (one channel block, never M) against the assembled matrix."""
    if transpose:
        cfg = data.draw(conv_transpose_nd_configs(n=n, max_length=4))
        w = np.ones((cfg["c_in_t"], cfg["c_out_t"] // cfg["groups"], *cfg["kernel_size"]))
        kwargs = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                      output_padding=cfg["output_padding"], groups=cfg["groups"])  # fmt: skip
        conv = transpose_layer(w, cfg["input_size"], ndim=n, **kwargs)
    else:
        cfg = data.draw(conv_nd_configs(n=n, max_length=5))
        w = np.ones((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel_size"]))
        kwargs = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                      groups=cfg["groups"], padding_mode=cfg["mode"])  # fmt: skip
        conv = conv_layer(w, cfg["input_size"], ndim=n, **kwargs)
    M = layer_matrix(conv, transpose=transpose)
    pattern = _summary.Pattern.of(conv, transpose)
    assert pattern.shape == M.shape and pattern.nnz == M.nnz
    per_row = np.diff(M.indptr)
    assert pattern.row_counts() == (per_row.min(), per_row.max())
    grid, rb, cb = pattern.grid(5, 7)
    coo = M.tocoo()
    want = np.zeros_like(grid)
    want[coo.row // rb, coo.col // cb] = True
    np.testing.assert_array_equal(grid, want)
    if not transpose:  # the structure's word is the library's rule
        assert (
            "circulant" in _summary.structure(conv, transpose).split(";")[0]
        ) == conv.is_circulant
