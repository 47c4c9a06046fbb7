"""The PyTorch example's steps: a small MLP on scikit-learn's handwritten digits (1,797 8x8
images, shipped with scikit-learn). Tensors and the trained state_dict pass between steps as
safetensors: no pickle anywhere."""

from __future__ import annotations

from typing import Annotated

import torch

from gristmill import log_metadata, step

Batch = dict  # {"x": float32 tensor of features, "y": int64 tensor of labels}


def make_model(hidden: int = 32) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)
    )


@step
def load_digits(
    test_size: float = 0.25, seed: int = 0
) -> tuple[Annotated[Batch, "train_set"], Annotated[Batch, "test_set"]]:
    from sklearn.datasets import load_digits as digits
    from sklearn.model_selection import train_test_split

    images, labels = digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images / 16.0, labels, test_size=test_size, random_state=seed, stratify=labels
    )

    def tensors(x: object, y: object) -> Batch:
        return {
            "x": torch.as_tensor(x, dtype=torch.float32),
            "y": torch.as_tensor(y, dtype=torch.int64),
        }

    log_metadata({"train_rows": len(y_train), "test_rows": len(y_test)})
    return tensors(x_train, y_train), tensors(x_test, y_test)


@step
def train(
    train_set: Batch, epochs: int = 5, lr: float = 0.01, hidden: int = 32, seed: int = 0
) -> Annotated[dict, "state_dict"]:
    """Mini-batch Adam; the loss and accuracy of every epoch are logged as metadata."""
    torch.manual_seed(seed)
    model = make_model(hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = train_set["x"], train_set["y"]
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y))
        total = 0.0
        for start in range(0, len(y), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        with torch.no_grad():
            accuracy = float((model.eval()(x).argmax(dim=1) == y).float().mean())
        loss_value = total / len(y)
        print(f"epoch {epoch}: loss {loss_value:.4f}, train accuracy {accuracy:.3f}")
        log_metadata(
            {
                "loss": loss_value,
                "epoch": epoch,
                f"loss_epoch_{epoch}": loss_value,
                f"train_accuracy_epoch_{epoch}": accuracy,
            }
        )
    return model.state_dict()


@step
def evaluate(state_dict: dict, test_set: Batch, hidden: int = 32) -> Annotated[dict, "metrics"]:
    model = make_model(hidden)
    model.load_state_dict(state_dict)
    with torch.no_grad():
        predicted = model.eval()(test_set["x"]).argmax(dim=1)
    metrics = {"test_accuracy": float((predicted == test_set["y"]).float().mean())}
    print(f"test accuracy {metrics['test_accuracy']:.3f}")
    log_metadata(metrics)
    return metrics
