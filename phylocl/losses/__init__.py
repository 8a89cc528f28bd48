"""phylocl.losses."""
