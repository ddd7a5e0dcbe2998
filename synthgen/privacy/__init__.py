"""Privacy tools: DP accounting and training (Opacus), private domain statistics."""
