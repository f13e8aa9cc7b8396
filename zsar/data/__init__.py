"""Video data: decoding, clip sampling, datasets, split protocols, the embedded benchmark.

Submodules (import what you need; nothing heavy happens at import):

* :mod:`zsar.data.decoding` — ``open_video``, ``probe``, ``read_frames`` (decord, PyAV fallback)
* :mod:`zsar.data.sampling` — TSN segment, dense and mmaction-conformant samplers (``make_sampler``)
* :mod:`zsar.data.transforms` — CLIP preprocessing of whole clips (a model says which: :mod:`zsar.models.preprocess`)
* :mod:`zsar.data.dataset` — ``VideoDataset``: one generic dataset of sample dicts
* :mod:`zsar.data.datasets` — thin factories (UCF101, HMDB51, Kinetics, ActivityNet, embedded, lists)
* :mod:`zsar.data.protocols` — zero-shot splits, cross-dataset, K600 splits, K-shot, GZSL
* :mod:`zsar.data.scan` — dataset scans with bad-file reports
* :mod:`zsar.data.frame_cache` — decode once: resized frames cached on disk, ``CachedVideoDataset``
* :mod:`zsar.data.embedded` — the procedurally rendered benchmark and its captioned pretraining corpus (``embedded.corpus``)
"""
