"""Personal data: keyed hashing for exact data match (scanner to come, issue 6)."""

from molehunt.pii.keyed import NORMALIZERS, KeyedHasher, normalize_id_number, normalize_phone

__all__ = ["NORMALIZERS", "KeyedHasher", "normalize_id_number", "normalize_phone"]
