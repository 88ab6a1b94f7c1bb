"""Hydra config groups, importable as ``mnistx.conf`` so an installed mnistx finds them."""
