"""phylocl.retrieval."""
