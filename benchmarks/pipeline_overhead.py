"""Pipeline overhead with nothing to do: `dvc repro` on an up-to-date project, and the Prefect flow around it.

`dvc_cli`: `dvc repro` as a child process in `--root` (what a user types). `dvc_api`: DVC's Python API
reproducing every stage in this process (what the flow's tasks call, without Prefect). `prefect_flow`: the
`nextquill` flow (flows/nextquill_flow.py) with all stages, in this process, on a temporary Prefect server
(`prefect_test_harness`; its start-up is reported apart). Orchestration overhead = prefect_flow − dvc_cli per
round. The project must be up to date (`dvc status` clean): the script refuses to start otherwise, so it never
runs a stage. It takes DVC's lock, so it cannot run while another `dvc repro` works in the same root.

    .venv/bin/python benchmarks/pipeline_overhead.py                       # this project, after `make run`
    .venv/bin/python benchmarks/pipeline_overhead.py --root /tmp/toy-dvc --repeats 2
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def dvc(root: Path, *args: str) -> str:
    exe = Path(sys.executable).with_name("dvc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dvc"]
    proc = subprocess.run([*cmd, *args], cwd=root, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"dvc {' '.join(args)} failed in {root}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def check_no_op(output: str, what: str) -> None:
    if "Running stage" in output:
        raise SystemExit(f"{what} ran a stage: the project was not up to date\n{output}")


def main(argv: list[str] | None = None) -> int:
    p = C.parser("pipeline_overhead", __doc__)
    p.add_argument("--root", type=Path, default=C.ROOT, help="DVC project root. Default this project")
    p.add_argument("--no-prefect", action="store_true", help="time `dvc repro` only")
    args = p.parse_args(argv)
    root = args.root.resolve()
    status = dvc(root, "status")
    if "up to date" not in status:
        raise SystemExit(f"{root} is not up to date; `dvc repro` would run stages:\n{status}")

    def dvc_cli():
        check_no_op(dvc(root, "repro"), "dvc repro")

    def dvc_api():
        from dvc.repo import Repo

        with contextlib.chdir(root), Repo(str(root)) as repo:
            ran = repo.reproduce()
        if ran:
            raise SystemExit(f"DVC's API ran {[s.addressing for s in ran]}: the project was not up to date")

    fns = {"dvc_cli": dvc_cli, "dvc_api": dvc_api}
    harness, startup = contextlib.nullcontext(), None
    if not args.no_prefect:
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        from prefect.testing.utilities import prefect_test_harness

        sys.path.insert(0, str(C.ROOT / "flows"))
        from nextquill_flow import nextquill

        def prefect_flow():
            state = nextquill(root=str(root), return_state=True)
            if not state.is_completed():
                raise SystemExit(f"flow run failed: {state.message}")
            if state.result()["stages_run"]:
                raise SystemExit(f"the flow ran {state.result()['stages_run']}: the project was not up to date")

        fns["prefect_flow"] = prefect_flow
        harness = prefect_test_harness(server_startup_timeout=90)
    start = time.perf_counter()
    with harness:
        if not args.no_prefect:
            startup = time.perf_counter() - start
        times = C.interleaved(fns, args.repeats, "cpu")

    rows = [[name, C.fmt(C.stats(t), ".2f")] for name, t in times.items()]
    checks = [["`dvc repro`, nothing to do (s)", C.fmt(C.stats(times["dvc_cli"])), "≤ 3 s"]]
    overhead = overhead_api = None
    if "prefect_flow" in times:
        overhead = C.stats([f - d for f, d in zip(times["prefect_flow"], times["dvc_cli"], strict=True)])
        overhead_api = C.stats([f - d for f, d in zip(times["prefect_flow"], times["dvc_api"], strict=True)])
        checks += [["Prefect flow − `dvc repro` (s)", C.fmt(overhead), "≤ 30 s"],
                   ["Prefect flow − DVC API in process (s)", C.fmt(overhead_api), "—"]]
    stages = len(yaml.safe_load((root / "dvc.yaml").read_text())["stages"])
    print(f"\n{root}: {stages} stages, all up to date; {args.repeats} rounds"
          + (f"; temporary Prefect server started in {startup:.1f} s (not counted)" if startup else "") + "\n")
    print(C.table(["variant", "s/run"], rows))
    print()
    print(C.table(["comparison", "measured", "target"], checks))
    C.write_result(args, {
        "root": C.shown(root), "stages": stages, "seconds": {k: C.stats(v) for k, v in times.items()},
        "prefect_server_startup_s": startup, "orchestration_overhead_s": overhead,
        "overhead_vs_dvc_api_s": overhead_api, "targets": {"dvc_repro_s": 3.0, "orchestration_overhead_s": 30.0}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
