"""One router per concern; :data:`ROUTERS` is what the app includes under ``/api``."""

from modalchorus.server.routers import (
    alignment,
    augment,
    concepts,
    items,
    jobs,
    metrics,
    projection,
    sets,
    settings,
)

ROUTERS = (
    settings.router,
    projection.router,
    items.router,
    concepts.router,
    metrics.router,
    sets.router,
    augment.router,
    alignment.router,
    jobs.router,
)

__all__ = ["ROUTERS"]
