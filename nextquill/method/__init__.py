"""The method, pure: tensors in, tensors out (MCE, DCE, token weights, the objectives). No I/O, no config."""
