"""Phoenix pull stage (placeholder until the source lands)."""
