"""One place to seed every random number generator the workbook uses."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, deterministic: bool = True) -> int:
    """Seed Python, NumPy and torch (CPU and CUDA); return the seed.

    Args:
        seed: the seed, normally the notebook's ``SEED`` parameter.
        deterministic: also ask torch for deterministic kernels where it has them.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # torch is a dependency, but keep data-only use light
        return seed
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def torch_generator(seed: int):
    """Return a seeded ``torch.Generator`` for a DataLoader's shuffling and sampling."""
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive NumPy/Python seeds from torch's worker seed."""
    import torch

    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
