"""Split a batch PDF from pdfTeX into per-copy PDFs, by copying its objects' bytes.

pypdf can do this, but it parses every object into Python objects and writes them back, about
8 ms per copy (most of it the fonts' objects, the same in every copy): for a roster of 200
students in three kinds of two documents, longer than TeX takes. The batch PDF is not an
arbitrary PDF, though: pdfTeX writes it, with `\\pdfobjcompresslevel=0` (set by generator.batch),
as plain numbered objects and one classic cross-reference table, and its pages carry their own
/Resources and /MediaBox. A copy is then: its pages and every object they reach, byte for byte
except for the object numbers in dictionaries (renumbered from 1, so the file is the same
whatever else the batch holds), a page tree and catalog of its own, and pdfTeX's /Info. Stream
data is never touched. About ten times faster than pypdf.

Anything unexpected (object streams, an xref stream, inherited page attributes, a page that
reaches another page) raises `SplitError`, and the caller falls back to pypdf.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SplitError", "split_pdf"]

_REF = re.compile(rb"\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f\s]*>|(\d+) 0 R\b", re.DOTALL)
_STREAM = re.compile(rb">>\s*stream\r?\n")
_HEADER = re.compile(rb"(\d+) 0 obj\b")
_TYPE = re.compile(rb"/Type\s*/(Pages?|Catalog|ObjStm|XRef)\b")


class SplitError(ValueError):
    """The PDF is not laid out as this splitter expects (it is not pdfTeX's uncompressed output)."""


class _Source:
    """The objects of one pdfTeX PDF: raw bytes per object number, and what each refers to."""

    def __init__(self, data: bytes):
        self.data = data
        start = data.rfind(b"startxref")
        if start < 0:
            raise SplitError("no startxref")
        xref = int(data[start + 9 :].split()[0])
        if data[xref : xref + 4] != b"xref":
            raise SplitError("not a classic cross-reference table")
        lines = data[xref:].split(b"\n", 2)
        first, count = (int(n) for n in lines[1].split())
        table = lines[2]
        offsets: dict[int, int] = {}
        for i in range(count):
            entry = table[20 * i : 20 * i + 20]
            if entry[17:18] == b"n":
                offsets[first + i] = int(entry[:10])
        trailer = table[20 * count :]
        if b"trailer" not in trailer[:20]:
            raise SplitError("the cross-reference table has more than one section")
        order = sorted(offsets, key=offsets.__getitem__)
        ends = [offsets[n] for n in order[1:]] + [xref]
        self.spans = {n: (offsets[n], end) for n, end in zip(order, ends, strict=True)}
        self.header = data[: min(offsets.values())]
        self.root = self._ref(trailer, rb"/Root")
        self.info = self._ref(trailer, rb"/Info", required=False)
        self._refs: dict[int, list[int]] = {}

    def _ref(self, text: bytes, key: bytes, required: bool = True) -> int:
        match = re.search(re.escape(key) + rb"\s+(\d+) 0 R", text)
        if match is None:
            if required:
                raise SplitError(f"no {key.decode()} in {text[:60]!r}")
            return 0
        return int(match.group(1))

    def object(self, number: int) -> bytes:
        start, end = self.spans[number]
        return self.data[start:end]

    def dictionary(self, number: int) -> tuple[bytes, bytes]:
        """(the object up to and including its dictionary, the stream and `endobj` after it)."""
        raw = self.object(number)
        match = _STREAM.search(raw)
        if match is None:
            return raw, b""
        return raw[: match.start() + 2], raw[match.start() + 2 :]

    def refs(self, number: int) -> list[int]:
        if number not in self._refs:
            head = self.dictionary(number)[0]
            found = [int(m.group(1)) for m in _REF.finditer(head) if m.group(1)]
            self._refs[number] = [n for n in found if n != number]
        return self._refs[number]

    def kind(self, number: int) -> bytes | None:
        match = _TYPE.search(self.dictionary(number)[0])
        return match.group(1) if match else None

    def pages(self) -> list[int]:
        """The page objects in order, walking the page tree from the catalog."""
        root = self.dictionary(self.root)[0]
        out: list[int] = []
        self._walk(self._ref(root, rb"/Pages"), out)
        return out

    def _walk(self, node: int, out: list[int]) -> None:
        head = self.dictionary(node)[0]
        kind = self.kind(node)
        if kind == b"Page":
            if b"/Resources" not in head or b"/MediaBox" not in head:
                raise SplitError(f"page object {node} inherits attributes")
            out.append(node)
            return
        if kind != b"Pages":
            raise SplitError(f"object {node} in the page tree is not a page")
        if re.search(rb"/(Resources|MediaBox|CropBox|Rotate)\b", head):
            raise SplitError(f"pages node {node} has attributes to inherit")
        kids = re.search(rb"/Kids\s*\[([^\]]*)\]", head)
        if kids is None:
            raise SplitError(f"pages node {node} has no /Kids")
        for kid in re.findall(rb"(\d+) 0 R", kids.group(1)):
            self._walk(int(kid), out)


def split_pdf(source: Path, ranges: Sequence[tuple[int, int]], outputs: Sequence[Path]) -> None:
    """Write pages [first, end) (0-based) of `source` to each of `outputs`.

    Raises:
        SplitError: `source` is not laid out as pdfTeX writes it uncompressed; nothing was written.
    """
    pdf = _Source(Path(source).read_bytes())
    pages = pdf.pages()
    parents = {n for page in pages for n in pdf.refs(page) if pdf.kind(n) == b"Pages"}
    files = [_copy(pdf, pages[first:end], parents) for first, end in ranges]
    for data, out in zip(files, outputs, strict=True):
        Path(out).write_bytes(data)


def _copy(pdf: _Source, pages: list[int], parents: set[int]) -> bytes:
    """One PDF holding `pages` of `pdf`."""
    if not pages:
        raise SplitError("a copy without pages")
    numbers: dict[int, int] = {}  # old object number -> new
    order: list[int] = []
    chosen = set(pages)
    todo = list(pages)
    for page in pages:
        numbers[page] = 3 + len(order)
        order.append(page)
    while todo:
        for ref in pdf.refs(todo.pop(0)):
            if ref in numbers or ref in parents:
                continue
            if ref not in pdf.spans:
                raise SplitError(f"reference to missing object {ref}")
            if pdf.kind(ref) in (b"Page", b"Pages", b"Catalog") and ref not in chosen:
                raise SplitError(f"object {ref} of another page is reachable")
            numbers[ref] = 3 + len(order)
            order.append(ref)
            todo.append(ref)
    for parent in parents:
        numbers[parent] = 2

    def renumber(match: re.Match[bytes]) -> bytes:
        if match.group(1) is None:
            return match.group(0)  # a string: left as it is
        return b"%d 0 R" % numbers[int(match.group(1))]

    out = bytearray(pdf.header)
    offsets = {}
    offsets[1] = len(out)
    out += b"1 0 obj\n<<\n/Type /Catalog\n/Pages 2 0 R\n>>\nendobj\n"
    offsets[2] = len(out)
    kids = " ".join(f"{numbers[p]} 0 R" for p in pages).encode()
    out += b"2 0 obj\n<<\n/Type /Pages\n/Count %d\n/Kids [%s]\n>>\nendobj\n" % (len(pages), kids)
    for old in order:
        head, tail = pdf.dictionary(old)
        new = numbers[old]
        head = _HEADER.sub(b"%d 0 obj" % new, head, count=1)
        offsets[new] = len(out)
        out += _REF.sub(renumber, head)
        out += tail
    info = 0
    if pdf.info and pdf.info in pdf.spans and not pdf.refs(pdf.info):
        info = len(offsets) + 1
        offsets[info] = len(out)
        out += _HEADER.sub(b"%d 0 obj" % info, pdf.object(pdf.info), count=1)
    size = len(offsets) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d\n/Root 1 0 R\n" % size
    if info:
        out += b"/Info %d 0 R\n" % info
    out += b">>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
