"""Training runs: the recipe, run dir, selection, resume, health, distribution, codistillation."""
