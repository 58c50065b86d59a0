"""A model of your own:
`dlrun --config-dir conf plugins=[mymodels,mydata] model=tiny_net data=blobs`.

dlrun fills in the arguments the data decides by name (in_features, num_classes, input_shape,
in_channels, image_size, vocab_size...); the others come from the config (model.hidden=32).
"""

from torch import Tensor, nn

import dlrun


@dlrun.register("model", "tiny_net")  # makes `model=tiny_net` an option
class TinyNet(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: int = 16) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be positive, got {hidden}")
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
