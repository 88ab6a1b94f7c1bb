"""TensorBoard's internals (torch.utils.tensorboard): a SummaryWriter's event file writer.

The HParams tab's summaries and pictures already encoded as PNG are written as raw Summary
protos; SummaryWriter's public methods would compute or re-encode them.
"""

from __future__ import annotations

from typing import Any


def file_writer(writer: Any) -> Any:
    """The FileWriter behind a SummaryWriter (`add_summary(summary, global_step)`)."""
    return writer._get_file_writer()
