"""dlrun: a Hydra-driven experiment runner for classic PyTorch models.

Importing this package must stay cheap (no torch): `dlrun --help` and shell completion rely on it.
"""

from dlrun.registry import register

__version__ = "0.1.0"
__all__ = ["register", "__version__"]
