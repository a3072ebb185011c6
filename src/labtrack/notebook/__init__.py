"""Notebook integration: the ``%mlrun`` magics and run provenance."""
