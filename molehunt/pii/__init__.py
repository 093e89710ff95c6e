"""Personal data: the scanner (engine, files), masking, and keyed hashing for exact data match."""

from molehunt.pii.keyed import NORMALIZERS, KeyedHasher, normalize_id_number, normalize_phone

__all__ = ["NORMALIZERS", "KeyedHasher", "normalize_id_number", "normalize_phone"]
