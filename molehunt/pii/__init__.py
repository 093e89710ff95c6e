"""Personal data: recognizers and the engine that finds it in text and files (the scanner,
:mod:`molehunt.pii.scan`), keyed hashing and exact data match against the client master,
and masking for whatever shows it."""

from molehunt.pii.keyed import NORMALIZERS, KeyedHasher, normalize_id_number, normalize_phone

__all__ = ["NORMALIZERS", "KeyedHasher", "normalize_id_number", "normalize_phone"]
