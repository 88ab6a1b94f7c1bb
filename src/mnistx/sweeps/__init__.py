"""Multiruns: the swept keys, finishing a sweep cut short, SLURM, and the comparison report."""
