"""Products: garments and other assets, their files, catalogue and processing."""
