"""Run one pickled split job in a fresh interpreter (the worker side of ``map_splits``).

``python -m zsar.experiments.split_worker JOB_FILE RESULT_FILE THREADS`` loads ``(fn, args)``
from ``JOB_FILE``, sets torch's CPU threads, calls ``fn(*args)`` and writes the pickled result to
``RESULT_FILE`` atomically. A fresh interpreter per job (rather than ``multiprocessing``) keeps
a job independent of its caller's state: a Jupyter kernel's main module, CUDA contexts, thread
pools. A failing job exits non-zero with its traceback on stderr. A worker whose parent dies
(a killed notebook kernel) exits within :data:`PARENT_POLL_S` seconds instead of training on as
an orphan.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


PARENT_POLL_S = 2.0
"""How often a worker checks that the process that started it is still alive."""


PARENT_ENV = "ZSAR_SPLIT_PARENT"
"""Environment variable in which ``map_splits`` passes its own pid to the workers it starts."""


def exit_with_parent(parent: int | None = None, poll_s: float = PARENT_POLL_S) -> None:
    """Start a daemon thread that ends this process once ``parent`` is no longer its parent.

    ``parent`` defaults to :data:`PARENT_ENV` (set by the caller before this interpreter started,
    so a parent that died while this one was still importing is noticed too), else ``getppid()``.
    """
    import os
    import threading
    import time

    if parent is None:
        parent = int(os.environ.get(PARENT_ENV) or os.getppid())

    def watch() -> None:
        while True:
            if os.getppid() != parent:  # re-parented: the caller is gone
                os._exit(3)  # no cleanup to wait for: checkpoints are written atomically
            time.sleep(poll_s)

    threading.Thread(target=watch, name="zsar-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    job_file, result_file, threads = (argv if argv is not None else sys.argv[1:])
    exit_with_parent()
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
