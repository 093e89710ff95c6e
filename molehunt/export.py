"""Evidence exports a court can check: spreadsheet-safe cells and a signed zip.

Every cell molehunt writes to a CSV or XLSX file goes through :func:`safe_cell`, so
no cell can start a formula when the file is opened in a spreadsheet (OWASP CSV
injection). An export zip holds its files, ``manifest.json`` with each file's
SHA-256 and size (and the audit chain head when it was made) and
``manifest.sig``: the Ed25519 signature of ``manifest.json`` by the store's signing
key (``<db>.sign.key``, mode 0600, beside the store), whose public key is in the
manifest and in the store. :func:`verify_export` (``molehunt case verify FILE.zip``)
recomputes the hashes and checks the signature, so a changed file with a recomputed
manifest is caught; given the store's public key, a zip signed by another key is too.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from openpyxl import Workbook

from molehunt.digests import sha256_hex

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: Characters a spreadsheet may read as the start of a formula (or which hide one:
#: tab and carriage return), with the full-width forms that some spreadsheets fold.
FORMULA_STARTS = frozenset("=+-@\t\r＝＋－＠")
#: Limits a checked zip must keep (a court's checker should not unpack a zip bomb).
MAX_MEMBERS = 64
MAX_MEMBER_BYTES = 1 << 30

# Control characters XML 1.0 cannot hold (openpyxl refuses them).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: object) -> str:
    """``value`` as text that no spreadsheet reads as a formula: text starting with
    ``= + - @``, tab, CR or ``＝ ＋ － ＠`` gets a leading ``'``; other text is unchanged.

    Numbers are written as their text (``3``, ``2.5``). A negative number (``-3``)
    starts with ``-`` and is prefixed like any other text (``'-3``): telling a number
    from a formula such as ``-2+3`` or ``-cmd|...`` by parsing is what OWASP warns
    against, and ``'-3`` still reads as minus three. ``None`` is the empty cell.
    """
    if value is None:
        text = ""
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = str(value)
    if text and text[0] in FORMULA_STARTS:
        return "'" + text
    return text


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """UTF-8 CSV (with a byte-order mark, so spreadsheets read it as UTF-8), every
    cell through :func:`safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """One sheet, every cell a string through :func:`safe_cell` (after dropping the
    control characters XML cannot hold: dropping them first, so none hides a formula)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in [header, *rows]:
        sheet.append([_xlsx_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_cell(value: object) -> str:
    text = safe_cell(value)
    return safe_cell(_XML_ILLEGAL.sub("", text)) if _XML_ILLEGAL.search(text) else text


def file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": sha256_hex(data), "size": len(data)}


def content_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 over every file's name, SHA-256 and size: the export's own hash, which
    its audit row names (so the store's trail tells which content it exported)."""
    entries = {name: file_entry(data) for name, data in files.items()}
    return sha256_hex(json.dumps(entries, sort_keys=True).encode())


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes_raw().hex()


def build_zip(
    files: Mapping[str, bytes],
    manifest: Mapping[str, Any],
    signing_key: Ed25519PrivateKey | None = None,
) -> bytes:
    """A zip of ``files`` and ``manifest.json``: ``manifest`` plus each file's
    SHA-256 and size under ``"files"``; with ``signing_key``, the public key under
    ``"signature"`` and ``manifest.sig`` (hex Ed25519 signature of manifest.json)."""
    full = {**manifest, "files": {name: file_entry(data) for name, data in files.items()}}
    if signing_key is not None:
        full["signature"] = {
            "algorithm": "Ed25519",
            "public_key": public_key_hex(signing_key),
            "file": SIGNATURE,
        }
    text = (json.dumps(full, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(_fixed_info(name), data)
        zf.writestr(_fixed_info(MANIFEST), text)
        if signing_key is not None:
            zf.writestr(_fixed_info(SIGNATURE), signing_key.sign(text).hex() + "\n")
    return out.getvalue()


def _fixed_info(name: str) -> zipfile.ZipInfo:
    # A fixed member time: the manifest carries when the export was made.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def verify_export(
    zip_bytes: bytes, trusted_key: str | None = None, *, require_signature: bool = True
) -> list[str]:
    """Problems found in an export zip: empty when it is a zip whose every file
    matches ``manifest.json`` (SHA-256 and size), holds no file it does not list, and
    whose manifest is signed by the public key it names (``require_signature``:
    unsigned exports, made before signing, are a problem) and, with ``trusted_key``
    (hex: the store's public key), by that key."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile as e:
        return [f"not a zip file: {e}"]
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            return [f"{len(members)} files in the zip: more than an export holds ({MAX_MEMBERS})"]
        names = [m.filename for m in members]
        problems = [
            f"{n}: more than once in the zip" for n in sorted(set(names)) if names.count(n) > 1
        ]
        too_big = [m.filename for m in members if m.file_size > MAX_MEMBER_BYTES]
        if too_big:
            return [*problems, *(f"{n}: larger than {MAX_MEMBER_BYTES} bytes" for n in too_big)]
        if MANIFEST not in names:
            return [*problems, f"{MANIFEST} is missing"]
        try:
            manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
            listed = manifest["files"]
            if not isinstance(listed, dict):
                raise TypeError("files is not an object")
        except (zipfile.BadZipFile, ValueError, KeyError, TypeError, OSError) as e:
            return [*problems, f"{MANIFEST} cannot be read: {e}"]
        problems.extend(
            _signature_problems(zf, names, manifest, trusted_key, require=require_signature)
        )
        for name in sorted(set(names) - {MANIFEST, SIGNATURE} - set(listed)):
            problems.append(f"{name}: in the zip but not in the manifest")
        for name, expected in sorted(listed.items()):
            if name not in names:
                problems.append(f"{name}: in the manifest but missing from the zip")
                continue
            try:
                data = zf.read(name)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
                # A changed byte of compressed data: a bad CRC or a broken stream.
                problems.append(f"{name}: cannot be read: {e}")
                continue
            actual = file_entry(data)
            if not isinstance(expected, dict):
                problems.append(f"{name}: manifest entry is not an object")
                continue
            if expected.get("size") != actual["size"]:
                problems.append(
                    f"{name}: {actual['size']} bytes, the manifest says {expected.get('size')}"
                )
            if expected.get("sha256") != actual["sha256"]:
                problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems


def _signature_problems(
    zf: zipfile.ZipFile,
    names: list[str],
    manifest: dict[str, Any],
    trusted_key: str | None,
    *,
    require: bool,
) -> list[str]:
    signed = manifest.get("signature")
    if signed is None and SIGNATURE not in names:
        return [f"{MANIFEST} is not signed"] if require or trusted_key else []
    if not isinstance(signed, dict) or SIGNATURE not in names:
        return [f"{MANIFEST}: the signature or its public key is missing"]
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(signed["public_key"])))
        signature = bytes.fromhex(zf.read(SIGNATURE).decode("ascii").strip())
        public.verify(signature, zf.read(MANIFEST))
    except InvalidSignature:
        return [f"{MANIFEST}: the signature does not match (the manifest was changed)"]
    except (KeyError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error, OSError):
        return [f"{MANIFEST}: the signature or its public key cannot be read"]
    if trusted_key is not None and signed["public_key"] != trusted_key:
        return [
            f"{MANIFEST}: signed by key {str(signed['public_key'])[:16]}, "
            f"not the store's signing key {trusted_key[:16]}"
        ]
    return []
