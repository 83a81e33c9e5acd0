"""Serve the `nextquill` flow as deployment `nextquill/full` until Ctrl-C: `make serve` runs this.

Needs a Prefect server and `PREFECT_API_URL` (`make serve` starts both). Each run is a subprocess in the project
root; one run at a time, since runs share params.yaml and the DVC workspace. Stopping leaves the deployment
active (`pause_on_shutdown=False`): runs requested meanwhile wait, Scheduled, for the next `make serve`.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(ROOT))  # nextquill, when the package is not installed
    from nextquill.stages._cli import quiet_telemetry

    quiet_telemetry()  # before Prefect reads its settings, like the poll frequency below
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")  # default 10 s: runs start within ~2 s
    os.environ.setdefault("NQ_ROOT", str(ROOT))
    os.chdir(ROOT)  # the deployment's entrypoint, flows/nextquill_flow.py, is relative to here
    from nextquill_flow import nextquill

    nextquill.serve(name="full", limit=1, pause_on_shutdown=False,
                    description="The NextQuill pipeline: `dvc repro --single-item` per stage, with overrides.")


if __name__ == "__main__":
    main()
