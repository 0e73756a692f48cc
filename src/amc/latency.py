"""Measured latency: :func:`measure_latency` (torch, any module) is kept here for the callers that
measured before runtimes existed; runtimes and the latency table are in :mod:`amc.deploy`."""

from __future__ import annotations

from amc.deploy.measure import measure_latency

__all__ = ["measure_latency"]
