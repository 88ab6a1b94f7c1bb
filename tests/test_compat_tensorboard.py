"""The torch.utils.tensorboard internal mnistx.compat.tensorboard relies on."""

from __future__ import annotations

import inspect
import random

from mnistx.compat.tensorboard import file_writer


def test_a_summary_writer_has_a_file_writer_taking_raw_summaries(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.proto.summary_pb2 import Summary
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    summary = Summary(value=[Summary.Value(tag="x", simple_value=2.5)])
    file_writer(writer).add_summary(summary, global_step=3)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (scalar,) = events.Scalars("x")
    assert (scalar.step, scalar.value) == (3, 2.5)


def test_record_checksums_in_c_are_tensorboards_own(tmp_path):
    """The writer's CRC-32C is swapped for google-crc32c's: the same masked values for any
    bytes, and event files TensorBoard's own reader (which checks every record's CRC in
    Python) reads back, a picture-sized record included."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    from tensorboard.summary.writer import record_writer
    from torch.utils.tensorboard import SummaryWriter

    from mnistx.compat.tensorboard import fast_record_checksums

    # The writer calls the module's name (which this module replaces) for every record.
    assert "masked_crc32c(" in inspect.getsource(record_writer.RecordWriter.write)
    fast_record_checksums()
    fast = record_writer.masked_crc32c
    fast_record_checksums()  # once is enough
    assert record_writer.masked_crc32c is fast is not masked_crc32c
    assert getattr(fast, "in_c", False)
    rng = random.Random(0)
    for n in (0, 1, 7, 8, 255, 4096, 100_003):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert fast(data) == masked_crc32c(data), n
    assert fast(bytearray(b"abc")) == masked_crc32c(b"abc")

    writer = SummaryWriter(str(tmp_path))
    blob = bytes(rng.randrange(256) for _ in range(60_000))
    picture = Summary.Image(height=1, width=1, colorspace=3, encoded_image_string=blob)
    file_writer(writer).add_summary(Summary(value=[Summary.Value(tag="p", image=picture)]), 1)
    writer.add_scalar("x", 2.5, 3)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert [s.value for s in events.Scalars("x")] == [2.5]
    assert events.Images("p")[0].encoded_image_string == blob
