"""MLOps: MLflow tracking, the registry and its promotion gate, the served pyfunc model and its request checks."""
