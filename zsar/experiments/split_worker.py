"""Run one pickled split job in a fresh interpreter (the worker side of ``map_splits``).

``python -m zsar.experiments.split_worker JOB_FILE RESULT_FILE THREADS`` loads ``(fn, args)``
from ``JOB_FILE``, sets torch's CPU threads, calls ``fn(*args)`` and writes the pickled result to
``RESULT_FILE`` atomically. A fresh interpreter per job (rather than ``multiprocessing``) keeps
a job independent of its caller's state: a Jupyter kernel's main module, CUDA contexts, thread
pools. A failing job exits non-zero with its traceback on stderr.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    job_file, result_file, threads = (argv if argv is not None else sys.argv[1:])
    import torch

    torch.set_num_threads(max(1, int(threads)))
    with open(job_file, "rb") as f:
        fn, args = pickle.load(f)
    result = fn(*args)
    from zsar.io import atomic_path

    with atomic_path(Path(result_file)) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
