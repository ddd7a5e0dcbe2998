"""Pure numpy/pandas data transforms (no torch): encoders, the transformer and its layout.

``TabularTransformer`` loads on first use (PEP 562): the layout alone (what a model file's
networks are checked against) needs only numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthgen.transform.layout import OutputLayout, Span

if TYPE_CHECKING:  # for the type checker only: at run time it loads on first use (below), with pandas
    from synthgen.transform.transformer import TabularTransformer

__all__ = ["OutputLayout", "Span", "TabularTransformer"]


def __getattr__(name: str) -> Any:
    if name == "TabularTransformer":
        from synthgen.transform.transformer import TabularTransformer

        return TabularTransformer
    raise AttributeError(f"module 'synthgen.transform' has no attribute {name!r}")
