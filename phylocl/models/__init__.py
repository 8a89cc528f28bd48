"""phylocl.models."""
