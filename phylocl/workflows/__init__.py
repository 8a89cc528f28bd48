"""End-to-end jobs behind the CLI commands (train, embed, index, search, evaluate, compare).

They sit above every other layer: they read inputs, wire data, models, losses, training and retrieval together,
show progress and write outputs atomically. ``phylocl/cli.py`` only parses arguments and calls these.
"""
