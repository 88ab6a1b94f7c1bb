"""The config: composing it from conf/, checking what a user set, building objects from it.

Nothing here imports torch, so `--help` and `--cfg job` answer at once.
"""
