"""skin_classifier's config: one choice per estimator, each with only the settings it takes."""

import typing

import pytest

from skinseg_assets.assets.classifier_config import ESTIMATOR_SETTINGS, SkinClassifierConfig
from skinseg_assets.pixels.model import DEFAULT_ESTIMATOR, DEFAULT_HYPERPARAMETERS, ESTIMATORS, build_estimator


def kind_of(settings) -> str:
    (kind,) = typing.get_args(settings.model_fields["kind"].annotation)
    return kind


def test_every_estimator_has_exactly_one_config_choice():
    assert sorted(kind_of(settings) for settings in ESTIMATOR_SETTINGS) == sorted(ESTIMATORS)
    union = typing.get_args(SkinClassifierConfig.model_fields["estimator"].annotation)
    assert set(union) == set(ESTIMATOR_SETTINGS)


@pytest.mark.parametrize("settings", ESTIMATOR_SETTINGS, ids=kind_of)
def test_every_setting_is_a_constructor_argument_of_its_estimator(settings):
    """build_estimator raises TypeError for an argument the estimator does not take."""
    chosen = settings()
    model = build_estimator(chosen.kind, **chosen.hyperparameters())
    for name, value in chosen.hyperparameters().items():
        assert model.get_params()[name] == value


def test_the_default_is_the_model_the_plain_pipeline_trains():
    """benchmarks/plain_pipeline.py builds DEFAULT_ESTIMATOR from DEFAULT_HYPERPARAMETERS."""
    chosen = SkinClassifierConfig().estimator
    assert chosen.kind == DEFAULT_ESTIMATOR
    from_config = build_estimator(chosen.kind, **chosen.hyperparameters()).get_params()
    assert from_config == build_estimator(DEFAULT_ESTIMATOR, **DEFAULT_HYPERPARAMETERS).get_params()
    assert from_config["early_stopping"] is True


@pytest.mark.parametrize("settings", [s for s in ESTIMATOR_SETTINGS if "random_state" in s.model_fields], ids=kind_of)
def test_a_seed_scikit_learn_would_refuse_is_refused_by_the_config(settings):
    import pydantic

    for seed in (0, 2**32 - 1):
        model = build_estimator(kind_of(settings), **settings(random_state=seed).hyperparameters())
        assert model.get_params()["random_state"] == seed
    for seed in (-1, 2**32):
        with pytest.raises(pydantic.ValidationError, match="random_state"):
            settings(random_state=seed)
