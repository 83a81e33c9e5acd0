"""Pipeline stages. Each module exposes `run(params, paths) -> result` and a `main()` that parses arguments.

DVC runs `python -m nextquill.stages.<name>`; Prefect tasks run the same code through DVC.
"""
