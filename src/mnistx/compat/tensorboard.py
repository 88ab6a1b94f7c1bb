"""TensorBoard's internals (torch.utils.tensorboard): a SummaryWriter's event file writer,
and the checksum its records are written with.

The HParams tab's summaries and pictures already encoded as PNG are written as raw Summary
protos; SummaryWriter's public methods would compute or re-encode them.
"""

from __future__ import annotations

from typing import Any


def file_writer(writer: Any) -> Any:
    """The FileWriter behind a SummaryWriter (`add_summary(summary, global_step)`)."""
    return writer._get_file_writer()


def fast_record_checksums() -> None:
    """Event records checksummed in C. Without TensorFlow, TensorBoard's record writer
    computes each record's CRC-32C in Python, byte by byte: ~150 ns a byte, ~50 ms of a
    sweep job's ~0.35 MB of events (its pictures), spent in the writer's thread while it
    holds the GIL the training and the next job wait on. google-crc32c gives the same
    values (tested, and TensorBoard's reader checks them) in microseconds."""
    import google_crc32c
    from tensorboard.summary.writer import record_writer

    if google_crc32c.implementation != "c" or hasattr(record_writer.masked_crc32c, "in_c"):
        return

    def masked_crc32c(data: bytes) -> int:
        """TensorBoard's masked_crc32c (the TFRecord format's) over google-crc32c."""
        crc = google_crc32c.value(bytes(data))
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    masked_crc32c.in_c = True  # type: ignore[attr-defined]
    record_writer.masked_crc32c = masked_crc32c
