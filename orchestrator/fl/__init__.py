"""The pure federated-learning engine: no Django, only Python, numpy and torch."""
