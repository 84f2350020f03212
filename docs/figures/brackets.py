"""Our certified bracket against bounds computed from the weight alone."""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc

n = 10
channels = [1, 2, 4, 8]
rows = {
    "exact (dense SVD)": [],
    "ours, upper": [],
    "circulant embedding": [],
    "Singla & Feizi 2021": [],
    "sum of tap norms": [],
}
rng = np.random.default_rng(1)
for c in channels:
    w = rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)
    dense = tc.conv2d_matrix(w, (n, n), padding=1, format="dense")
    rows["exact (dense SVD)"].append(np.linalg.norm(dense, 2))
    bounds = tc.spectral_norm_bounds(w, (n, n), padding=1, rtol=1e-6)
    rows["ours, upper"].append(bounds.upper)
    circ = tc.spectral_norm(w, (n + 2, n + 2), padding=1, padding_mode="circular")
    rows["circulant embedding"].append(circ)
    reshapes = [
        w.transpose(0, 2, 1, 3).reshape(c * 3, c * 3),
        w.transpose(0, 3, 1, 2).reshape(c * 3, c * 3),
        w.reshape(c, c * 9),
        w.transpose(0, 2, 3, 1).reshape(c * 9, c),
    ]
    rows["Singla & Feizi 2021"].append(3 * min(np.linalg.norm(r, 2) for r in reshapes))
    rows["sum of tap norms"].append(
        sum(np.linalg.norm(w[:, :, i, j], 2) for i in range(3) for j in range(3))
    )
exact = np.array(rows["exact (dense SVD)"])
fig, ax = plt.subplots(figsize=(7, 3.2))
for label, values in rows.items():
    ax.plot(channels, np.array(values) / exact, "o-", label=label, markersize=4)
ax.set_xscale("log", base=2)
ax.set_xlabel("channels in = out (3x3, zero padding, 10x10)")
ax.set_ylabel("bound / exact norm")
ax.legend(fontsize=8)
fig.tight_layout()
