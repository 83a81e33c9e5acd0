"""Model plumbing: loading the base model, batching both views, the Trainer, effect estimation, steered decoding."""
