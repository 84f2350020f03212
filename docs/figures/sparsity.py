"""Sparsity patterns of four conv layers (drawn by the docs build)."""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc

w1 = np.ones(3)
cases = [
    ("1-D, K=3, padding 1", tc.conv1d_matrix(w1, 16, padding=1)),
    ("1-D, K=3, stride 2", tc.conv1d_matrix(w1, 16, stride=2, padding=1)),
    ("1-D, circular", tc.conv1d_matrix(w1, 16, padding=1, padding_mode="circular")),
    ("2-D, 3x3 on 5x5", tc.conv2d_matrix(np.ones((3, 3)), (5, 5), padding=1)),
]
fig, axes = plt.subplots(1, len(cases), figsize=(10, 2.9))
for ax, (title, M) in zip(axes, cases, strict=True):
    ax.spy(M.toarray(), markersize=2.5)
    ax.set_title(f"{title}\n{M.shape[0]} x {M.shape[1]}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
