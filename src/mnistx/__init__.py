"""mnistx: train and compare MLPs and CNNs on MNIST-style data with Lightning and Hydra.

Importing mnistx changes nothing in the process: the commands (python -m mnistx.<command>)
set up their own exit (mnistx.fast_exit) and everything else they need.
"""

__version__ = "0.1.0"
