"""Generator of the embedded synthetic review benchmark (Amazon Reviews 2023 format, with true preference spans)."""
