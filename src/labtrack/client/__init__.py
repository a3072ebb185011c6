"""The Python API: ``TrackingClient`` and the fluent functions re-exported by ``labtrack``."""

from labtrack.client.tracking import TrackingClient
from labtrack.client.writer import MetricWriterError

__all__ = ["MetricWriterError", "TrackingClient"]
