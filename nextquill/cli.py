"""The `nextquill` command: generate a review with a registered model.

    nextquill generate --history-file reviews.jsonl --item-title "The Quiet Orbit" \\
        --item-description "A slow-burn novel..." --rating 5.0 --review-title "Worth it" --max-new-tokens 64

The model (default `models:/<registry.model_name>@champion`) is loaded with `mlflow.pyfunc.load_model` from the
tracking URI that `params.yaml` gives (`tracking.uri`, else $MLFLOW_TRACKING_URI, else the project's mlflow.db).
The history file holds one past review per line, newest first (the prompt keeps the first ones that fit):
plain text, or JSON lines with `text` (and optionally `title`, `rating`, `item_title`, `item_description`,
shown in the prompt as in training).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from nextquill.config import ConfigError, Params, load_params
from nextquill.paths import Paths


class CliError(RuntimeError):
    """A user-facing error: printed without a traceback."""


def read_history(path: Path, limits) -> list[str]:
    """One entry per non-empty line: a review text, a JSON string, or a JSON object with `text`.

    Every line is checked as the served model checks a history entry; a bad line is a `CliError` naming
    the file, the line and what was expected.
    """
    from nextquill.mlops.requests import RequestError, history_entry

    try:
        data = path.read_bytes()
    except OSError as err:
        raise CliError(f"{path}: cannot be read ({err.strerror})") from None
    entries = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise CliError(f"{path}:{number}: not UTF-8 (byte {err.start}: {err.reason})") from None
        if not line:
            continue
        value: object = line
        if line.startswith(("{", '"', "[")):
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, RecursionError, ValueError) as err:
                raise CliError(f"{path}:{number}: starts like JSON but is not valid JSON ({err})") from None
        if not isinstance(value, str | dict):
            raise CliError(f"{path}:{number}: expected a review text, a JSON string or a JSON object with `text`, "
                           f"got a JSON {type(value).__name__}")
        try:
            history_entry(value, f"{path}:{number}", limits)
        except RequestError as err:
            raise CliError(str(err)) from None
        entries.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return entries


def _params(args: argparse.Namespace) -> Params:
    path = Path(args.params) if args.params else Path(args.root) / "params.yaml"
    if args.params is None and not path.is_file():
        return Params()  # outside a project: defaults (the tracking URI still honours $MLFLOW_TRACKING_URI)
    return load_params(path)


def check_model_uri(client, uri: str) -> None:
    """Raise `CliError` naming the URI and what exists when a `models:/name@alias` or `/version` is missing."""
    from mlflow.exceptions import MlflowException

    body = uri.removeprefix("models:/")
    if body == uri or body.startswith("m-"):
        return  # not a registry URI: let MLflow resolve it
    name, alias = body.split("@", 1) if "@" in body else (body.split("/", 1)[0], None)
    version = None if alias is not None or "/" not in body else body.split("/", 1)[1]
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models()) or ["none"]
        raise CliError(f"{uri}: no registered model {name!r}; registered models: {', '.join(names)}") from None
    versions = sorted((str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int)
    aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(model.aliases.items())) or "none"
    if (alias is not None and alias not in model.aliases) or (version is not None and version not in versions):
        raise CliError(f"{uri}: not found; model {name!r} has aliases: {aliases}; versions: "
                       f"{', '.join(versions) or 'none'}")


def serving_limits(params: Params):
    """The request limits the register stage gives a model registered with these params."""
    from nextquill.mlops.requests import Limits, serving_config

    return Limits.from_config(serving_config(params))


def generate(args: argparse.Namespace) -> int:
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from nextquill.mlops.requests import RequestError, check_request, max_new_tokens
    from nextquill.mlops.tracking import configure

    params = _params(args)
    if args.prompt is None and args.item_title is None:
        raise CliError("give --item-title (with --history-file, --item-description) or a ready --prompt")
    if args.rating is not None and not math.isfinite(args.rating):  # a DataFrame would read NaN as "no rating"
        raise CliError(f"--rating: expected a finite number, got {args.rating}")
    limits = serving_limits(params)
    history = read_history(Path(args.history_file), limits) if args.history_file else []
    row = {"prompt": args.prompt, "history": history, "item_title": args.item_title,
           "item_description": args.item_description, "rating": args.rating, "review_title": args.review_title}
    try:  # the checks the served model makes, before spending seconds on loading it
        check_request([row], limits)
        max_new_tokens({"max_new_tokens": args.max_new_tokens}, params.registry.max_new_tokens, limits)
    except RequestError as err:
        raise CliError(f"invalid request: {err}") from None
    uri = configure(params.tracking, Paths(Path(args.root)))
    model_uri = args.model_uri or f"models:/{params.registry.model_name}@champion"
    check_model_uri(mlflow.MlflowClient(), model_uri)
    print(f"loading {model_uri} from {uri}", file=sys.stderr)
    model = mlflow.pyfunc.load_model(model_uri)
    predict_params = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else None
    try:
        text = model.predict(pd.DataFrame([row]), params=predict_params)[0]
    except MlflowException as err:  # the model's own request checks (its limits may differ from params.yaml)
        raise CliError(err.message) from None
    if args.output:
        from nextquill.io import atomic_open

        with atomic_open(args.output) as handle:
            handle.write(text + "\n")
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nextquill", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write a review with a registered model")
    gen.add_argument("--model-uri", help="default: models:/<registry.model_name>@champion")
    gen.add_argument("--params", help="parameters file (default: <root>/params.yaml, or defaults without one)")
    gen.add_argument("--root", default=".", help="project root (where mlflow.db lives by default)")
    gen.add_argument("--history-file", help="past reviews, newest first, one per line: text or JSON with `text`")
    gen.add_argument("--item-title")
    gen.add_argument("--item-description", default="")
    gen.add_argument("--rating", type=float, help="rating of the review to write, e.g. 5.0")
    gen.add_argument("--review-title", help="title of the review to write")
    gen.add_argument("--prompt", help="a ready chat-formatted prompt instead of the fields above")
    gen.add_argument("--max-new-tokens", type=int, help="default: the model's registry.max_new_tokens")
    gen.add_argument("--output", help="write the text here instead of stdout")
    gen.set_defaults(func=generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from nextquill.mlops.tracking import TrackingUnavailable
    from nextquill.stages._cli import quiet_telemetry

    args = build_parser().parse_args(argv)
    quiet_telemetry()
    try:
        return args.func(args)
    except (CliError, ConfigError, TrackingUnavailable, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
