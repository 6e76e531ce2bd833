"""Model summaries: torchinfo's shapes, params and mult-adds plus receptive field and jump per layer.

Measuring (:mod:`.measure`: :func:`summarize`; :func:`summarize_model` for what a user names) fills the
records of a :class:`ModelSummary` (:mod:`.records`: the summary as data, a rich table and HTML).
"""

from __future__ import annotations

from ..receptive.tracker import Field, FieldTracker
from .measure import summarize, summarize_model
from .records import LayerRecord, ModelSummary, summary_html, summary_table

__all__ = ["Field", "FieldTracker", "LayerRecord", "ModelSummary", "summarize", "summarize_model",
           "summary_html", "summary_table"]
