"""The torch.utils.tensorboard internal mnistx.compat.tensorboard relies on."""

from __future__ import annotations

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
