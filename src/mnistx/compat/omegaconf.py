"""OmegaConf's internals: which of its functions is resolving a value right now.

OmegaConf resolves a value it is about to replace in a merge (to see whether it is a node);
the run-folder resolvers must not claim a folder for such a value. OmegaConf says so in no
public way; its merge function's name on the call stack does.
"""

from __future__ import annotations

import sys
from types import FrameType

MERGE_FUNCTION = "_map_merge"  # omegaconf.basecontainer.BaseContainer._map_merge


def resolving_for_a_merge() -> bool:
    """Whether OmegaConf resolves the current value only because a merge replaces it."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == MERGE_FUNCTION and "omegaconf" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False
