"""The comparison harness: every method of the paper's table on the same data and decoding."""
