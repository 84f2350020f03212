"""Singular values of one kernel under the four padding modes."""

import matplotlib.pyplot as plt
import numpy as np

import toeplitz_conv as tc

w = np.random.default_rng(0).standard_normal((2, 2, 5))
fig, ax = plt.subplots(figsize=(7, 3.2))
for mode in ("circular", "zeros", "reflect", "replicate"):
    s = tc.singular_values(w, 64, padding=2, padding_mode=mode)
    ax.plot(s, ".-" if mode == "circular" else "-", markersize=3, label=mode)
ax.set_xlabel("index")
ax.set_ylabel("singular value")
ax.set_title("2 -> 2 channels, K = 5, L = 64, padding 2", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
