"""The PyTorch example: `python pipeline.py` (or `gristmill run pipeline:digits_mlp` from this
folder) trains a small MLP on scikit-learn's digits and evaluates it. Needs
`pip install "gristmill[torch,sklearn]"`."""

from __future__ import annotations

from steps import evaluate, load_digits, train

from gristmill import pipeline


@pipeline
def digits_mlp(epochs: int = 5, lr: float = 0.01, hidden: int = 32) -> None:
    train_set, test_set = load_digits()
    state_dict = train(train_set, epochs=epochs, lr=lr, hidden=hidden)
    evaluate(state_dict, test_set, hidden=hidden)


if __name__ == "__main__":
    run = digits_mlp()
    print(run.name, run.status, run.metadata)
