"""Model summaries: torchinfo's shapes, params and mult-adds plus receptive field and jump per layer.

Layer records (:mod:`.records`) -> statistics (:class:`ModelSummary`) -> formatting (:mod:`.format`).
"""

from __future__ import annotations

from .format import summary_html, summary_table
from .receptive import Field, FieldTracker
from .records import LayerRecord, ModelSummary, summarize

__all__ = ["Field", "FieldTracker", "LayerRecord", "ModelSummary", "summarize", "summary_html",
           "summary_table"]
