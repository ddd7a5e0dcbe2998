"""Differential privacy: accounting, private domain statistics, DP-SGD wiring (Opacus), the ledger.

``accounting`` composes noisy releases into an epsilon; ``domain`` measures what the transformer may
know of each column under DP; ``training`` plans the budget and wires DP-SGD into a fit; ``ledger``
records what was spent. This package imports nothing: import the submodules directly.
"""
