"""The store's keys: created by ``molehunt init``, kept outside the store, mode 0600.

Three keys, each in its own file beside the store (``<db>`` is the store file):

- ``<db>.key`` (or ``--key-file`` / ``MOLEHUNT_KEY``): the client-hashing key. The
  store keeps only its *fingerprint* (HMAC-SHA256 of a fixed label under the key,
  never the key), and every verb that hashes refuses another key: a wrong key
  would otherwise match no client and answer "0 of our clients".
- ``<db>.audit.key``: the key of the audit chain's HMAC (:mod:`molehunt.audit`).
- ``<db>.sign.key``: the Ed25519 key that signs case exports (:mod:`molehunt.export`);
  the store keeps its public key.

A store made before fingerprints (schema < 6) takes the fingerprint of the first
key used with it, and says so (:func:`check_store_key` returns the note).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import weakref

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from molehunt.config import Settings
from molehunt.errors import ConfigError, KeyMissingError
from molehunt.store import Store
from molehunt.store.files import (
    create_key_file as create_key_file,
)
from molehunt.store.files import (
    meta,
    read_key_file,
    set_meta,
    store_file,
)

#: The label whose HMAC under the client-hashing key is the key's fingerprint.
FINGERPRINT_LABEL = b"molehunt client-hashing key fingerprint v1"


class KeyMismatchError(ConfigError):
    """The client-hashing key given is not the one the store's clients were hashed with."""


def load_key(settings: Settings, store: Store | None = None) -> bytes:
    """The key from ``MOLEHUNT_KEY`` (settings.key) or from the key file; with
    ``store``, checked against the store's fingerprint (:func:`check_store_key`)."""
    if settings.key:
        key = bytes.fromhex(settings.key)
    else:
        path = settings.key_file
        if not path.exists():
            raise KeyMissingError(
                f"no client-hashing key at {path}: give --key-file or MOLEHUNT_KEY "
                "(a new store: run `molehunt init`)"
            )
        key = read_key_file(path)
    if store is not None:
        check_store_key(store, key)
    return key


def fingerprint(key: bytes) -> str:
    """The key's fingerprint: HMAC-SHA256 of :data:`FINGERPRINT_LABEL`, hex. It tells
    keys apart without revealing one (and is useless for hashing client data)."""
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def check_store_key(store: Store, key: bytes, *, new_store: bool = False) -> str | None:
    """Refuse a key that is not the store's; ``None`` when it is. A store without a
    fingerprint yet (made before molehunt kept one) records this key's, on the audit
    trail too, and returns a note saying so: the first key used with such a store
    becomes its key (the note is also logged as a warning: on standard error unless
    logging is configured). ``new_store``: ``molehunt init`` of a store it just made."""
    mine = fingerprint(key)
    known = meta(store, "key_fingerprint")
    if known is None:
        from molehunt import audit

        set_meta(store, "key_fingerprint", mine)
        if new_store:
            return None
        audit.record(store, "key fingerprint", f"recorded {mine[:12]}", None, who="molehunt")
        note = (
            f"store {store.path} had no key fingerprint: recorded this key's "
            f"({mine[:12]}); from now on only this key is accepted"
        )
        logging.getLogger("molehunt.keys").warning(note)  # stderr unless configured
        return note
    if not hmac.compare_digest(known, mine):
        raise KeyMismatchError(
            f"this key is not the store's key (store {store.path} was set up with key "
            f"{known[:12]}, this one is {mine[:12]}): give the store's --key-file or MOLEHUNT_KEY"
        )
    return None


SIGNING_SUFFIX = ".sign.key"
SIGNING_META = "signing_public_key"
_EPHEMERAL_SIGNING: weakref.WeakKeyDictionary[Store, Ed25519PrivateKey] = (
    weakref.WeakKeyDictionary()
)


def signing_key(store: Store) -> Ed25519PrivateKey:
    """The store's Ed25519 export signing key, ``<db>.sign.key`` (its 32-byte seed in
    hex, mode 0600), made on first use; its public key is recorded in the store and
    a key file that does not match it is refused. In-memory stores: one per process."""
    path = store_file(store, SIGNING_SUFFIX)
    if path is None:
        if store not in _EPHEMERAL_SIGNING:
            _EPHEMERAL_SIGNING[store] = Ed25519PrivateKey.generate()
        key = _EPHEMERAL_SIGNING[store]
    else:
        if not path.exists() and meta(store, SIGNING_META) is not None:
            raise ConfigError(
                f"the export signing key {path} is missing: restore it from backup "
                "(molehunt will not sign with a new key: the store names the old one)"
            )
        create_key_file(path)
        seed = read_key_file(path)
        if len(seed) != 32:
            raise ConfigError(f"{path} does not hold a 32-byte Ed25519 seed")
        key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes_raw().hex()
    known = meta(store, SIGNING_META)
    if known is None:
        set_meta(store, SIGNING_META, public)
    elif known != public:
        raise ConfigError(
            f"the export signing key {path} is not the store's (it names {known[:16]})"
        )
    return key


def signing_public_key(store: Store) -> str | None:
    """The store's export signing public key (hex), ``None`` before the first export."""
    return meta(store, SIGNING_META)
