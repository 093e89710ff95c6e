"""Word (docx) and PDF documents read as text, within the limits."""

from __future__ import annotations

import io
import zipfile

from molehunt.pii.files.archives import check_zip, read_member
from molehunt.pii.files.common import Limits, Refused

# -- documents ----------------------------------------------------------------------


def docx_text(limits: Limits, data: bytes) -> str:
    """Paragraph text of a .docx, read with defusedxml (no entity expansion)."""
    from defusedxml import ElementTree  # type: ignore[import-untyped]

    archive = zipfile.ZipFile(io.BytesIO(data))
    check_zip(limits, archive, xml_parts=True)
    try:
        xml = read_member(limits, archive, archive.getinfo("word/document.xml"))
    except KeyError as e:
        raise Refused("not a Word document (no word/document.xml)") from e
    root = ElementTree.fromstring(xml, forbid_dtd=True)
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    paragraphs = []
    for p in root.iter(f"{w}p"):
        paragraphs.append("".join(t.text or "" for t in p.iter(f"{w}t")))
    return "\n".join(paragraphs)


def pdf_text(limits: Limits, data: bytes) -> str:
    """The text layer of a PDF (scanned images have none: nothing is found)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise Refused("encrypted PDF")
    if len(reader.pages) > limits.max_pdf_pages:
        raise Refused(f"too many pages ({len(reader.pages)}, limit {limits.max_pdf_pages})")
    return "\n".join(page.extract_text() or "" for page in reader.pages)
