"""The ZenML-style example's pipelines, written against gristmill's own API:

gristmill run pipelines:feature_engineering -c configs/feature_engineering.yaml
gristmill run pipelines:training -c configs/training_logistic.yaml
gristmill run pipelines:training -c configs/training_forest.yaml
gristmill run pipelines:inference -c configs/inference.yaml
"""

from __future__ import annotations

from steps import evaluate, load_wines, predict, promote, split_and_scale, train

from gristmill import ExternalArtifact, Model, pipeline


@pipeline
def feature_engineering(rows: int = 0, test_size: float = 0.25) -> None:
    split_and_scale(load_wines(rows=rows), test_size=test_size)


@pipeline
def training(model_type: str = "logistic") -> None:
    """Train on the latest feature engineering output; the configuration file chooses the
    model type and the model (``model:`` block), so every run makes a model version."""
    model = train(ExternalArtifact("train_set"), model_type=model_type)
    accuracy = evaluate(model, ExternalArtifact("test_set"))
    promote(accuracy)


@pipeline
def inference(model_name: str = "wine_classifier") -> None:
    """Predict with "the production model": resolved by stage when each run starts."""
    production = Model(name=model_name, version="production")
    predict(production.get_artifact("classifier"), ExternalArtifact("test_set"))
