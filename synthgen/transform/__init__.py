"""Pure numpy/pandas data transforms (no torch): encoders, the transformer and its layout."""

from synthgen.transform.layout import OutputLayout, Span
from synthgen.transform.transformer import TabularTransformer

__all__ = ["OutputLayout", "Span", "TabularTransformer"]
