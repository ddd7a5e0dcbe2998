"""File protection: authenticated encryption streams, key material, signatures.

Bottom to top: ``keys`` (symmetric key files, fingerprints, key kinds) and ``sealing`` (``Secret``: what
opens a file, ``Seal``: what a file is sealed with), ``streams`` (chunked
AES-256-GCM with a key, a passphrase or an X25519 recipient), ``keypairs`` (X25519 / Ed25519 key
pairs as PEM, passphrase-sealed by ``streams``) and ``signing`` (Ed25519 detached signatures). This
layer imports only ``synthgen.files`` and ``synthgen.errors``, so commands that only protect files
start fast; import the submodules directly (this package imports nothing).
"""
