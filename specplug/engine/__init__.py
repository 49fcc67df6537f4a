"""The PyTorch reference engine (API documented once the engine lands)."""
