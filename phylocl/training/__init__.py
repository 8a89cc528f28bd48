"""phylocl.training."""
