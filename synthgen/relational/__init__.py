"""Several related tables at once: metadata graph, per-table models conditioned on their parents, key
generation, and reading and writing folders and databases."""
