"""molehunt: catch insiders stealing client personal data, and tell who leaked a dataset."""

__version__ = "0.1.0"
