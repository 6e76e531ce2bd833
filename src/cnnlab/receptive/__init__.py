"""Receptive fields, one room for the summary, interpretation and the web page.

Rooms: ``tracker`` (field size and jump of every tensor of a forward pass, and where unit 0's field
starts: :class:`FieldTracker`), ``view`` (one unit's field placed on the input, and its effective field
from the input gradient) and ``units`` (the conv stages of a model and the input box each unit sees).

Names are imported lazily: ``import cnnlab.receptive`` does not load torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Field": "tracker",
    "FieldTracker": "tracker",
    "ReceptiveFieldView": "view",
    "receptive_field_view": "view",
    "Stage": "units",
    "conv_stages": "units",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
