"""Fixtures and fault injection for the evals graders (see plugin.py); run by `fenceproof eval grade`."""
