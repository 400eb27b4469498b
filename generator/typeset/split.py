"""Split a batch PDF from pdfTeX into per-copy PDFs, by copying its objects' bytes.

pypdf can do this, but it parses every object into Python objects and writes them back, about
8 ms per copy (most of it the fonts' objects, the same in every copy): for a roster of 200
students in three kinds of two documents, longer than TeX takes. The batch PDF is not an
arbitrary PDF, though: pdfTeX writes it, with `\\pdfobjcompresslevel=0` (set by generator.typeset.batch),
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
        self._pieces: dict[int, tuple[list[int], list[bytes], bytes]] = {}
        self._kinds: dict[int, bytes | None] = {}
        self._pages: list[int] | None = None
        self.nodes: set[int] = set()  # the /Pages nodes of the page tree (not copied)

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
            self._refs[number] = [n for n in self.pieces(number)[0] if n != number]
        return self._refs[number]

    def pieces(self, number: int) -> tuple[list[int], list[bytes], bytes]:
        """The object cut where its number and its references go, for writing it renumbered:
        (the references; the dictionary's text around them, one piece more than references, from
        after `N 0 obj`; the stream and `endobj`). Cut once per object: every copy of a batch
        writes the same fonts."""
        if number not in self._pieces:
            head, tail = self.dictionary(number)
            header = _HEADER.match(head)
            if header is None:
                raise SplitError(f"object {number} does not start with its number")
            refs: list[int] = []
            texts: list[bytes] = []
            last = header.end()
            for match in _REF.finditer(head, last):
                if match.group(1) is None:
                    continue  # a string: left as it is
                texts.append(head[last : match.start()])
                refs.append(int(match.group(1)))
                last = match.end()
            texts.append(head[last:])
            self._pieces[number] = (refs, texts, tail)
        return self._pieces[number]

    def kind(self, number: int) -> bytes | None:
        if number not in self._kinds:
            match = _TYPE.search(self.dictionary(number)[0])
            self._kinds[number] = match.group(1) if match else None
        return self._kinds[number]

    def pages(self) -> list[int]:
        """The page objects in order, walking the page tree from the catalog."""
        if self._pages is None:
            root = self.dictionary(self.root)[0]
            out: list[int] = []
            self._walk(self._ref(root, rb"/Pages"), out)
            self._pages = out
        return self._pages

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
        self.nodes.add(node)
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
    files = [_assemble([pdf], [(0, page) for page in pages[first:end]], []) for first, end in ranges]
    for data, out in zip(files, outputs, strict=True):
        Path(out).write_bytes(data)


def join_pdfs(parts: Sequence[tuple[Path, int, int, str]], out: Path, *, two_sided: bool) -> None:
    """One print file from page ranges of pdfTeX PDFs: (source, first, end, bookmark) per copy.

    Each copy gets a bookmark; with `two_sided`, a copy with an odd number of pages is followed
    by a blank page, so that the next one starts on the front of a sheet.

    Raises:
        SplitError: a source is not laid out as pdfTeX writes it uncompressed; nothing was written.
    """
    sources: dict[Path, int] = {}
    loaded: list[_Source] = []
    pages: list[tuple[int, int] | None] = []  # (source, page object), or None for a blank page
    outline: list[tuple[str, int]] = []
    trees: dict[int, list[int]] = {}
    for path, first, end, title in parts:
        if path not in sources:
            sources[path] = len(loaded)
            loaded.append(_Source(Path(path).read_bytes()))
            trees[sources[path]] = loaded[-1].pages()
        n = sources[path]
        outline.append((title, len(pages)))
        pages.extend((n, page) for page in trees[n][first:end])
        if two_sided and (end - first) % 2:
            pages.append(None)
    Path(out).write_bytes(_assemble(loaded, pages, outline))


def _pdf_text(text: str) -> bytes:
    """A PDF text string: ASCII as a literal, anything else as UTF-16BE with a byte order mark."""
    if text.isascii():
        return b"(" + re.sub(rb"([\\()])", rb"\\\1", text.encode("ascii")) + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def _assemble(
    sources: Sequence[_Source], pages: Sequence[tuple[int, int] | None], outline: Sequence[tuple[str, int]]
) -> bytes:
    """A PDF of `pages` (source index, page object; None: blank), with bookmarks at page indices."""
    if not pages:
        raise SplitError("a document without pages")
    numbers: dict[tuple[int, int], int] = {}  # (source, old object number) -> new number
    order: list[tuple[int, int]] = []
    for src in sources:
        src.pages()  # walks the page tree, which finds its /Pages nodes
    parents = [src.nodes for src in sources]
    chosen = {page for page in pages if page is not None}
    page_numbers: list[int] = []
    blank_numbers: dict[int, int] = {}
    next_number = 3
    for index, page in enumerate(pages):
        if page is None:
            blank_numbers[index] = next_number
        else:
            numbers[page] = next_number
            order.append(page)
        page_numbers.append(next_number)
        next_number += 1
    todo = list(order)
    while todo:
        n, old = todo.pop(0)
        src = sources[n]
        for ref in src.refs(old):
            key = (n, ref)
            if key in numbers or ref in parents[n]:
                continue
            if ref not in src.spans:
                raise SplitError(f"reference to missing object {ref}")
            if src.kind(ref) in (b"Page", b"Pages", b"Catalog") and key not in chosen:
                raise SplitError(f"object {ref} of another page is reachable")
            numbers[key] = next_number
            next_number += 1
            order.append(key)
            todo.append(key)

    out = bytearray(sources[0].header)
    offsets: dict[int, int] = {}

    def add(number: int, body: bytes) -> None:
        offsets[number] = len(out)
        out.extend(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    outlines = next_number if outline else 0
    catalog = b"<<\n/Type /Catalog\n/Pages 2 0 R\n" + (b"/Outlines %d 0 R\n" % outlines if outline else b"") + b">>"
    add(1, catalog)
    kids = " ".join(f"{n} 0 R" for n in page_numbers).encode()
    add(2, b"<<\n/Type /Pages\n/Count %d\n/Kids [%s]\n>>" % (len(pages), kids))
    box = b"[0 0 595.276 841.89]"
    for index, page in enumerate(pages):
        if page is None:
            add(blank_numbers[index], b"<<\n/Type /Page\n/MediaBox %s\n/Resources << >>\n/Parent 2 0 R\n>>" % box)
            continue
        box = _media_box(sources[page[0]], page[1]) or box
    for key in order:
        n, old = key
        refs, texts, tail = sources[n].pieces(old)
        offsets[numbers[key]] = len(out)
        out += b"%d 0 obj" % numbers[key]
        out += texts[0]
        for ref, text in zip(refs, texts[1:], strict=True):
            out += b"2 0 R" if ref in parents[n] else b"%d 0 R" % numbers[(n, ref)]
            out += text
        out += tail
    if outline:
        items = list(range(outlines + 1, outlines + 1 + len(outline)))
        add(outlines,
            b"<<\n/Type /Outlines\n/First %d 0 R\n/Last %d 0 R\n/Count %d\n>>" % (items[0], items[-1], len(items)))
        for k, ((title, at), number) in enumerate(zip(outline, items, strict=True)):
            links = b"".join([b"/Prev %d 0 R\n" % items[k - 1] if k else b"",
                              b"/Next %d 0 R\n" % items[k + 1] if k + 1 < len(items) else b""])
            add(number, b"<<\n/Title %s\n/Parent %d 0 R\n%s/Dest [%d 0 R /Fit]\n>>"
                % (_pdf_text(title), outlines, links, page_numbers[at]))
    info = 0
    first = sources[0]
    if first.info and first.info in first.spans and not first.refs(first.info):
        info = max(offsets) + 1
        offsets[info] = len(out)
        out += _HEADER.sub(b"%d 0 obj" % info, first.object(first.info), count=1)
    size = max(offsets) + 1
    if sorted(offsets) != list(range(1, size)):
        raise SplitError("object numbers are not contiguous (a bug)")
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d\n/Root 1 0 R\n" % size
    if info:
        out += b"/Info %d 0 R\n" % info
    out += b">>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _media_box(src: _Source, page: int) -> bytes | None:
    match = re.search(rb"/MediaBox\s*(\[[^\]]*\])", src.dictionary(page)[0])
    return match.group(1) if match else None
