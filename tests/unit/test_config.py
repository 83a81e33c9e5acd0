from pathlib import Path

import pytest
import yaml

from nextquill.config import ConfigError, Params, flatten, load_params, parse_params

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_repository_params_parse():
    params = load_params(REPO / "params.yaml")
    assert params.model.name_or_path == "embedded:smollm2-135m"
    assert params.synthesize.users_per_category * len(params.synthesize.categories) >= 200
    assert params.synthesize.min_reviews >= 12


def _leaves(value, prefix=""):
    """(dotted key, value) of every leaf of a nested dict (lists are leaves)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, f"{prefix}{key}.")
    else:
        yield prefix[:-1], value


def test_every_default_is_the_params_yaml_value_and_every_key_is_in_params_yaml():
    """params.yaml is the one source of values: a model default that differs from it is a second, wrong source."""
    import yaml

    from nextquill.config import Params

    in_yaml = dict(_leaves(yaml.safe_load((REPO / "params.yaml").read_text())))
    defaults = dict(_leaves(Params().model_dump(mode="json")))
    assert sorted(defaults) == sorted(in_yaml), "params.yaml and nextquill/config.py list different keys"
    differ = {key: (defaults[key], in_yaml[key]) for key in defaults if defaults[key] != in_yaml[key]}
    assert differ == {}, f"defaults (config.py, params.yaml) that disagree: {differ}"


def test_misspelled_key_names_file_line_key_and_allowed_keys(tmp_path):
    path = write(tmp_path, "base:\n  seed: 1\nsynthesize:\n  seed: 3\n  users_per_categroy: 9\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    message = str(err.value)
    assert f"{path}:5: synthesize.users_per_categroy = 9: unknown key; did you mean 'users_per_category'?" in message
    assert "users_per_category" in message  # the allowed keys are listed


def test_unknown_section_is_rejected(tmp_path):
    expected = (r"params.yaml:1: trian: unknown key; did you mean 'train'\? "
                r"allowed keys here: base, compare, data, effects, eval, model, promote, registry, synthesize, "
                r"tracking, train")
    with pytest.raises(ConfigError, match=expected):
        load_params(write(tmp_path, "trian:\n  lr: 1\n"))


def test_bad_value_names_key_value_and_constraint(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, "synthesize:\n  users_per_category: -3\n"))
    assert "synthesize.users_per_category = -3: Input should be greater than or equal to 1" in str(err.value)


def test_literal_lists_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"model.dtype = 'fp8'.*'auto', 'float32', 'bfloat16' or 'float16'"):
        load_params(write(tmp_path, "model:\n  dtype: fp8\n"))


def test_cross_field_check_names_both_values():
    with pytest.raises(ConfigError, match=r"max_reviews \(5\) must be >= min_reviews \(18\)"):
        parse_params({"synthesize": {"max_reviews": 5}})


def test_comparison_seed_lists_are_checked_and_each_method_has_its_own():
    with pytest.raises(ConfigError, match=r"reading_seeds \[45\] are not in compare.seeds \[42, 43, 44\]"):
        parse_params({"compare": {"reading_seeds": [45]}})
    with pytest.raises(ConfigError, match=r"\['dce_only'\] in both compare.methods and compare.readings"):
        parse_params({"compare": {"methods": ["context_sft", "dce_only"]}})
    compare = parse_params({"compare": {"seeds": [1, 2], "reading_seeds": [2]}}).compare
    assert compare.seeds_of("nextquill") == (1, 2) and compare.seeds_of("dce_only") == (2,)
    assert compare.seeds_of("context_sft_steering") == (2,)


def test_unknown_embedded_model_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown embedded model 'gpt5'.*embedded:smollm2-135m"):
        parse_params({"model": {"name_or_path": "embedded:gpt5"}})


def test_models_are_frozen():
    params = Params()
    with pytest.raises(Exception, match="frozen"):
        params.base.seed = 3


def test_overrides_apply_before_validation(tmp_path):
    path = write(tmp_path, "base:\n  seed: 1\n")
    assert load_params(path, {"base.seed": 7}).base.seed == 7
    with pytest.raises(ConfigError, match="base.sed"):
        load_params(path, {"base.sed": 7})


def test_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(write(tmp_path, "base: [1,\n"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(write(tmp_path, "- 1\n"))


def test_every_dvc_param_key_exists_in_the_config_models():
    """Each `params:` entry of dvc.yaml names a section or a leaf of `Params`."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    leaves = set(flatten(Params()))
    sections = {key.split(".")[0] for key in leaves}
    named = [key for stage in stages.values() for key in stage.get("params", [])]
    assert named, "dvc.yaml names no params"
    unknown = [key for key in named if key not in leaves and key not in sections]
    assert unknown == []


def test_params_yaml_sets_only_known_keys_and_mirrors_the_models():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(raw) == set(Params.model_fields)
    assert set(flatten(parse_params(raw))) == set(flatten(Params()))
