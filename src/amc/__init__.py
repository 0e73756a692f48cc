"""amc: AutoML for Model Compression (He et al. 2018), built on PyTorch, Torch-Pruning,
Gymnasium, Stable-Baselines3 and Optuna."""

import os as _os

__version__ = "0.1.0"

# Every pruned network has new layer shapes, so oneDNN's primitive cache (1024 entries by default)
# is almost never hit across policies but grows a search's memory; 256 keeps what one network
# reuses between its batches. Read once, at the first oneDNN call: set it before that to change it.
_os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")
