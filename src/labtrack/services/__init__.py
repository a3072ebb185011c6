"""Rules: validation and limits, the search grammar, downsampling, run lifecycle."""

from labtrack.services.tracking import TrackingService

__all__ = ["TrackingService"]
