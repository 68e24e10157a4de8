"""depth: monocular depth (transformers checkpoints) and scoring against ground truth."""
