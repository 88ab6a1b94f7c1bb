"""mnistx: train and compare MLPs and CNNs on MNIST-style data with Lightning and Hydra."""

# First, so that its exit handler runs after every library's (see fast_exit).
from mnistx import fast_exit as _fast_exit  # noqa: F401

__version__ = "0.1.0"
