"""Fully-connected models: the perceptron / linear / logistic regression and the MLP."""

from __future__ import annotations

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is unknown: choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Perceptron(nn.Module):
    """One linear layer over the flattened input: logits (classification) or values (regression)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: Tensor) -> Tensor:  # (B, *input_shape) -> (B, out_features)
        return self.linear(x.flatten(1))


class MLP(nn.Module):
    """Linear -> activation -> dropout, once per hidden width, then a linear head."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: list[int] | tuple[int, ...] = (128,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), _activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # (B, *input_shape) -> (B, out_features)
        return self.net(x.flatten(1))


_activation = activation  # MLP's `activation` argument shadows the helper's name
