"""De-identification before training: the masking policy and its operations, the identifier scan, k-anonymity.

``policy`` (``Masker``, ``MaskPolicy``, ``mask``; public as ``synthgen.mask`` ...) runs per-column ``ops``
(on ``values`` and ``dates``) after ``checks`` found every problem with a policy; ``identifiers`` finds
columns that look like identifiers; ``anonymity`` generalizes quasi-identifiers to k-anonymity. This
package imports nothing: import the submodules directly.
"""
