"""NextQuill: LLM personalization by causal preference modeling (arXiv 2506.02368).

The package holds the pure math, the stage code that DVC and Prefect both run, and the
MLflow side effects. Importing it does nothing but define names.
"""

__version__ = "0.1.0"
