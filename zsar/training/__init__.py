"""Training: AdamW + warm-up/cosine schedule, atomic checkpoints, a resumable loop, DDP helpers.

Every method plugs in through ``loss_fn(model, batch) -> (loss, logs)``::

    from zsar.training import LoaderFactory, OptimConfig, fit
    result = fit(model, loss_fn, LoaderFactory(train_set, batch_size=32, seed=SEED), epochs=10,
                 run_dir=run_dir, optim=OptimConfig(lr=1e-5), amp="bf16", eval_fn=eval_seen,
                 monitor="top1", seed=SEED)

``eval_fn`` scores held-out videos of the *seen* classes only; unseen classes never reach
training or model selection. Under ``torchrun --nproc_per_node N`` the same call trains with
DDP (the ``batch_size`` given to :class:`LoaderFactory` is global) and only rank 0 writes.
"""

from zsar.training.checkpoint import (capture_rng_states, checkpoint_path, frozen_digests,
                                      latest_checkpoint, list_checkpoints, load_checkpoint,
                                      prune_checkpoints, restore_rng_states, save_checkpoint,
                                      strip_training_state, tensor_digest, unwrap_model)
from zsar.training.distributed import (DistInfo, LoaderFactory, all_gather_objects,
                                       all_gather_tensors, all_reduce_mean, barrier, cleanup,
                                       distributed_sampler, extract_features,
                                       gather_in_dataset_order, init_distributed, is_distributed,
                                       is_main_process, move_to_device, per_rank_batch_size, rank,
                                       world_size)
from zsar.training.history import History
from zsar.training.loop import AMP_MODES, FitResult, OptimConfig, Trainer, autocast, fit
from zsar.training.schedule import (WarmupCosine, build_optimizer, build_scheduler, param_groups,
                                    resolve_warmup_steps)

__all__ = [
    "AMP_MODES", "DistInfo", "FitResult", "History", "LoaderFactory", "OptimConfig", "Trainer",
    "WarmupCosine", "all_gather_objects", "all_gather_tensors", "all_reduce_mean", "autocast",
    "barrier", "build_optimizer", "build_scheduler", "capture_rng_states", "checkpoint_path",
    "cleanup", "distributed_sampler", "extract_features", "fit", "frozen_digests",
    "gather_in_dataset_order",
    "init_distributed", "is_distributed", "is_main_process", "latest_checkpoint",
    "list_checkpoints", "load_checkpoint", "move_to_device", "param_groups",
    "per_rank_batch_size", "prune_checkpoints", "rank", "resolve_warmup_steps",
    "restore_rng_states", "save_checkpoint", "strip_training_state", "tensor_digest",
    "unwrap_model", "world_size",
]
