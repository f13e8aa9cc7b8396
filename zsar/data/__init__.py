"""Video data: decoding, clip sampling, datasets, split protocols, the embedded benchmark."""
