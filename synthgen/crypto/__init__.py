"""File protection: authenticated encryption streams, key material, signatures.

``streams`` (chunked AES-256-GCM, passphrase or X25519 recipient), ``keys`` (key files, key pairs as
PEM, fingerprints) and ``signing`` (Ed25519 detached signatures). This layer imports only
``synthgen.files`` and ``synthgen.errors``, so commands that only protect files start fast; import
the submodules directly (this package imports nothing).
"""
