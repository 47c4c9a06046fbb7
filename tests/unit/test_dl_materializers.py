"""PyTorch, TensorFlow/Keras and Hugging Face values pass between the steps of real pipeline
runs in their open formats (never the pickle fallback), come back equal, and an artifact
written by an incompatible library version fails to load with the fix in the message.

The libraries are the ``ml`` extra. Without them a test is skipped, except in CI
(``CI`` set), where a missing library fails the test instead."""

import importlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest

from gristmill import RunFailedError, pipeline, step
from gristmill.artifacts import LocalArtifactStore, load_artifact, save_artifact
from gristmill.client import ArtifactVersion
from gristmill.errors import MaterializerError


def needs(*packages: str) -> pytest.MarkDecorator:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    # In CI the test runs anyway and its import fails: a missing extra is a failure there.
    return pytest.mark.skipif(
        bool(missing) and not os.environ.get("CI"), reason=f"not installed: {missing}"
    )


@pytest.fixture
def no_pickle(caplog: pytest.LogCaptureFixture) -> Any:
    """Fails the test if any value was stored with the pickle fallback."""
    caplog.set_level(logging.WARNING, logger="gristmill")
    yield
    pickled = [r.getMessage() for r in caplog.records if "cloudpickle" in r.getMessage()]
    assert not pickled


def edit_stamp(artifact: ArtifactVersion, **changes: Any) -> None:
    """Rewrites the library stamp in the stored folder, as an older or newer library would
    have written it."""
    stamp_path = artifact.local_directory() / "library.json"
    stamp = json.loads(stamp_path.read_text())
    stamp_path.write_text(json.dumps({**stamp, **changes}))


# ---------------------------------------------------------------- PyTorch

if importlib.util.find_spec("torch") is not None:
    import torch

    class TinyMLP(torch.nn.Module):
        """User code TorchScript compiles (a module-level class, so its source is found)."""

        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.Linear(4, 8)
            self.out = torch.nn.Linear(8, 3)
            self.register_buffer("scale", torch.tensor(0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.relu(self.hidden(x)) * self.scale)


@needs("torch", "safetensors")
def test_torch_state_dict_and_module_pass_between_steps(no_pickle: None) -> None:
    import torch

    @step
    def train() -> tuple[
        Annotated[dict, "weights"],
        Annotated[torch.nn.Module, "net"],
        Annotated[dict, "checkpoint"],
        Annotated[torch.Tensor, "expected"],
    ]:
        torch.manual_seed(0)
        net = TinyMLP()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        net(torch.ones(2, 4)).sum().backward()
        optimizer.step()
        checkpoint = {"optimizer": optimizer.state_dict(), "epoch": 3, "loss": float("nan")}
        expected = net(torch.arange(8.0).reshape(2, 4)).detach()
        return net.state_dict(), net.eval(), checkpoint, expected

    @step
    def predict(weights: dict, net: torch.nn.Module, checkpoint: dict) -> torch.Tensor:
        rebuilt = TinyMLP()
        rebuilt.load_state_dict(weights)
        x = torch.arange(8.0).reshape(2, 4)
        assert checkpoint["epoch"] == 3 and checkpoint["optimizer"]["param_groups"][0]["lr"] == 0.1
        assert checkpoint["optimizer"]["state"][0]["momentum_buffer"].shape == (8, 4)
        return torch.stack([rebuilt.eval()(x), net(x)])

    @pipeline
    def torch_flow() -> None:
        weights, net, checkpoint, _ = train()
        predict(weights, net, checkpoint)

    run = torch_flow()
    outputs = run.steps["train"].outputs
    assert {name: v.materializer for name, v in outputs.items()} == {
        "weights": "torch_tensors",
        "net": "torch_module",
        "checkpoint": "torch_tensors",
        "expected": "torch_tensors",
    }
    expected = outputs["expected"].load()
    both = run.steps["predict"].output().load()
    assert torch.equal(both[0], expected) and torch.equal(both[1], expected)
    weights = outputs["weights"].load()
    assert list(weights) == list(TinyMLP().state_dict())  # order kept
    assert outputs["checkpoint"].load()["loss"] != outputs["checkpoint"].load()["loss"]  # NaN
    fields = outputs["net"].metadata["visualization"]["fields"]
    assert fields["class"].endswith("TinyMLP") and fields["parameters"] == 4 * 8 + 8 + 8 * 3 + 3
    stats = outputs["expected"].metadata["visualization"]["fields"]
    assert stats["shape"] == [2, 3] and stats["min"] == pytest.approx(float(expected.min()))


@needs("torch", "safetensors")
def test_tensor_kinds_round_trip(tmp_path: Path, no_pickle: None) -> None:
    import torch

    store = LocalArtifactStore(str(tmp_path / "store"))
    shared = torch.randn(4, 4)
    values = [
        torch.tensor(2.5),
        torch.empty(0, 3),
        torch.arange(6, dtype=torch.int16).reshape(2, 3).t(),  # not contiguous
        torch.randn(3, dtype=torch.bfloat16),
        torch.nn.Parameter(torch.randn(2)),
        {"tied": shared, "also_tied": shared, "view": shared[1:]},
    ]
    for value in values:
        saved = save_artifact(store, value, where="test")
        loaded = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
        assert saved.materializer == "torch_tensors"
        assert type(loaded) is type(value)
        if isinstance(value, dict):
            assert all(torch.equal(loaded[k], v) for k, v in value.items())
        else:
            assert torch.equal(loaded, value) and loaded.dtype == value.dtype
            assert loaded.requires_grad == value.requires_grad


@needs("torch")
def test_a_module_torchscript_cannot_compile_goes_to_the_flagged_fallback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    class Dynamic(torch.nn.Module):
        def forward(self, x: torch.Tensor, **options: Any) -> torch.Tensor:
            return x * len(options)

    saved = save_artifact(LocalArtifactStore(str(tmp_path)), Dynamic(), where="test")
    assert saved.materializer == "cloudpickle"
    assert "storing it with cloudpickle" in caplog.text


@needs("torch")
def test_datasets_and_dataloaders_are_refused_with_what_to_return() -> None:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    @step
    def make_loader() -> DataLoader:
        return DataLoader(TensorDataset(torch.ones(4, 2)), batch_size=2)

    @pipeline
    def loading() -> None:
        make_loader()

    with pytest.raises(RunFailedError, match=r"torch DataLoader .* is not stored") as caught:
        loading()
    for alternative in ("a tensor", "numpy array", "pandas DataFrame", "datasets.Dataset"):
        assert alternative in str(caught.value)
    with pytest.raises(MaterializerError, match="torch Dataset"):
        save_artifact(LocalArtifactStore("unused"), TensorDataset(torch.ones(1)), where="test")


@needs("torch", "safetensors")
def test_an_incompatible_torch_version_is_a_clear_error() -> None:
    import torch

    @step
    def make() -> tuple[Annotated[torch.Tensor, "t"], Annotated[torch.nn.Module, "m"]]:
        return torch.ones(2), torch.nn.Linear(2, 2)

    @pipeline
    def making() -> None:
        make()

    outputs = making().steps["make"].outputs
    edit_stamp(outputs["t"], version="1.13.0")
    with pytest.raises(MaterializerError, match=r"written by torch 1\.13\.0 .*pip install"):
        outputs["t"].load()
    major = torch.__version__.split(".")[0]
    edit_stamp(outputs["m"], version=f"{major}.999.0")  # TorchScript from a newer torch
    with pytest.raises(MaterializerError, match=r"upgrade \(pip install 'torch>="):
        outputs["m"].load()


# ---------------------------------------------------------------- TensorFlow / Keras


@needs("tensorflow", "keras")
def test_keras_model_and_tf_tensor_pass_between_steps(no_pickle: None) -> None:
    import keras
    import tensorflow as tf

    inputs = np.linspace(0, 1, 24, dtype="float32").reshape(6, 4)

    @step
    def fit() -> tuple[Annotated[keras.Model, "model"], Annotated[tf.Tensor, "expected"]]:
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(2)]
        )
        model.compile(optimizer="adam", loss="mse")
        model.fit(inputs, np.ones((6, 2)), epochs=2, verbose=0)
        return model, tf.constant(model.predict(inputs, verbose=0))

    @step
    def predict(model: keras.Model, expected: tf.Tensor) -> np.ndarray:
        return np.stack([model.predict(inputs, verbose=0), expected.numpy()])

    @pipeline
    def keras_flow() -> None:
        model, expected = fit()
        predict(model, expected)

    run = keras_flow()
    outputs = run.steps["fit"].outputs
    assert outputs["model"].materializer == "keras"
    assert outputs["expected"].materializer == "tf_tensor"
    predicted, expected = run.steps["predict"].output().load()
    np.testing.assert_array_equal(predicted, expected)
    assert isinstance(outputs["expected"].load(), tf.Tensor)
    assert outputs["model"].metadata["parameters"] == 4 * 5 + 5 + 5 * 2 + 2

    edit_stamp(outputs["model"], version="2.15.0")
    with pytest.raises(MaterializerError, match=r"written by keras 2\.15\.0"):
        outputs["model"].load()


@needs("tensorflow")
def test_tf_tensor_dtypes_round_trip(tmp_path: Path, no_pickle: None) -> None:
    import tensorflow as tf

    store = LocalArtifactStore(str(tmp_path))
    for value in (
        tf.constant(3.0),
        tf.constant([[1, 2]], dtype=tf.int8),
        tf.constant([1.5, -2.0], dtype=tf.bfloat16),
        tf.zeros((0, 2), dtype=tf.float64),
    ):
        saved = save_artifact(store, value, where="test")
        loaded = load_artifact(store, saved.content.uri, saved.materializer, saved.data_type)
        assert saved.materializer == "tf_tensor"
        assert loaded.dtype == value.dtype and loaded.shape == value.shape
        assert bool(tf.reduce_all(loaded == value))


# ---------------------------------------------------------------- Hugging Face


@needs("datasets")
def test_hf_datasets_pass_between_steps_memory_mapped(no_pickle: None) -> None:
    import datasets

    @step
    def build() -> tuple[
        Annotated[datasets.Dataset, "rows"], Annotated[datasets.DatasetDict, "splits"]
    ]:
        rows = datasets.Dataset.from_dict({"x": list(range(10)), "text": list("abcdefghij")})
        shuffled = rows.shuffle(seed=1)  # an index mapping, stored applied
        return shuffled, shuffled.train_test_split(test_size=0.3, seed=0)

    @step
    def use(rows: datasets.Dataset, splits: datasets.DatasetDict) -> dict:
        doubled = rows.map(lambda r: {"y": r["x"] * 2})  # its cache goes to a private folder
        return {
            "x": rows["x"],
            "y": doubled["y"],
            "sizes": {k: v.num_rows for k, v in splits.items()},
        }

    @pipeline
    def hf_flow() -> None:
        use(*build())

    run = hf_flow()
    outputs = run.steps["build"].outputs
    assert outputs["rows"].materializer == outputs["splits"].materializer == "hf_dataset"
    stored = sorted(p.name for p in (outputs["rows"].local_directory() / "hf").iterdir())
    rows = outputs["rows"].load()
    assert all(Path(f["filename"]).is_symlink() for f in rows.cache_files)  # memory-mapped links
    result = run.steps["use"].output().load()
    assert result["x"] == rows["x"] and sorted(result["x"]) == list(range(10))
    assert result["y"] == [2 * x for x in result["x"]]
    assert result["sizes"] == {"train": 7, "test": 3}
    assert sorted(p.name for p in (outputs["rows"].local_directory() / "hf").iterdir()) == stored
    visualization = outputs["splits"].metadata["visualization"]
    assert visualization["kind"] == "sections" and visualization["sections"][0]["columns"]


def tiny_tokenizer() -> Any:
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "grist", "mill"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


def tiny_bert() -> Any:
    import torch
    import transformers

    config = transformers.BertConfig(
        vocab_size=6,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config).eval()


@needs("transformers", "torch")
def test_transformers_model_and_tokenizer_pass_between_steps(no_pickle: None) -> None:
    import torch
    import transformers

    @step
    def build() -> tuple[
        Annotated[transformers.PreTrainedModel, "model"],
        Annotated[transformers.PreTrainedTokenizerBase, "tokenizer"],
        Annotated[torch.Tensor, "expected"],
    ]:
        model, tokenizer = tiny_bert(), tiny_tokenizer()
        encoded = tokenizer(["grist mill", "mill grist ore"], padding=True, return_tensors="pt")
        return model, tokenizer, model(**encoded).logits.detach()

    @step
    def classify(model: transformers.PreTrainedModel, tokenizer: Any) -> torch.Tensor:
        encoded = tokenizer(["grist mill", "mill grist ore"], padding=True, return_tensors="pt")
        return model(**encoded).logits.detach()

    @pipeline
    def transformers_flow() -> None:
        model, tokenizer, _ = build()
        classify(model, tokenizer)

    run = transformers_flow()
    outputs = run.steps["build"].outputs
    assert outputs["model"].materializer == outputs["tokenizer"].materializer == "transformers"
    assert torch.equal(run.steps["classify"].output().load(), outputs["expected"].load())
    assert outputs["model"].metadata["parameters"] == tiny_bert().num_parameters()
    assert (outputs["model"].local_directory() / "hf" / "model.safetensors").is_file()


@needs("transformers", "torch")
def test_a_model_class_is_taken_only_from_transformers_tables(tmp_path: Path) -> None:
    import transformers

    store = LocalArtifactStore(str(tmp_path))
    saved = save_artifact(store, tiny_bert(), where="test")
    # A type name whose module is not imported: the class comes from the config's
    # architecture, looked up in transformers' own auto-model tables.
    loaded = load_artifact(store, saved.content.uri, "transformers", "not.imported.Model")
    assert type(loaded) is transformers.BertForSequenceClassification
    config_path = store.local_directory(saved.content.uri) / "hf" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "architectures": ["os.system"]}))
    with pytest.raises(MaterializerError, match="not one of transformers' model classes"):
        load_artifact(store, saved.content.uri, "transformers", "not.imported.Model")


def test_libraries_are_not_imported_to_choose_a_materializer() -> None:
    """can_handle answers from sys.modules: asking about a plain type imports nothing."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gristmill.artifacts.materializers import candidates_for\n"
        "candidates_for(dict); candidates_for(int); candidates_for(object)\n"
        "heavy = {'torch', 'tensorflow', 'keras', 'datasets', 'transformers'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
