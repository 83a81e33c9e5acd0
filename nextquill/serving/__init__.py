"""Serving: the MLflow pyfunc model (models from code) that wraps the base model and the adapter."""
