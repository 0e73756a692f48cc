"""amc: AutoML for Model Compression (He et al. 2018), built on PyTorch, Torch-Pruning,
Gymnasium, Stable-Baselines3 and Optuna."""

__version__ = "0.1.0"
