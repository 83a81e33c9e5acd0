"""Evaluation: generation and text metrics, the DCE diagnostic against truth labels, and the reports."""
