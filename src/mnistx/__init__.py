"""mnistx: train and compare MLPs and CNNs on MNIST-style data with Lightning and Hydra."""

__version__ = "0.1.0"
