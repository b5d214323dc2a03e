"""A DICOM file serialised once by pydicom, then copied many times with fixed-length fields patched.

pydicom spends ~1 ms encoding a small file; copying bytes and patching a few fields takes
microseconds. A `FileTemplate` is built from a Dataset whose varying fields hold placeholders
(`uid_placeholder`, `text_placeholder`, `number_placeholder`), one per named slot; `render`
writes each slot's value (exactly the placeholder's length) at every place the placeholder
was found, nested sequences included, and the pixel bytes at the end. The files keep real,
complete headers: only values change, never lengths, so every element's length field stays right.
"""

import io
import warnings
from dataclasses import dataclass

from pydicom.dataset import Dataset

UID_LENGTH = 50  # every UID a template carries is this long (see seed.uid), so UIDs patch in place


def uid_placeholder(i: int) -> str:
    """A valid UID of UID_LENGTH characters, distinct for each i and unlike any real UID."""
    return f"9.{i + 1}.".ljust(UID_LENGTH, "9")


def text_placeholder(i: int, length: int) -> str:
    """Text of `length` characters (>= 6) that no real header value contains, valid even for CS."""
    if length < 6:
        raise ValueError(f"a text slot needs at least 6 characters, got {length}")
    return f"Q{chr(65 + i // 26)}{chr(65 + i % 26)}".ljust(length, "_")


def number_placeholder(i: int, width: int) -> str:
    """A decimal string of `width` (>= 9) characters that no real value has (exponent -99)."""
    if width < 9:
        raise ValueError(f"a number slot needs at least 9 characters, got {width}")
    return f"+{i + 1:0{width - 5}d}E-99"


@dataclass
class FileTemplate:
    """The bytes of one file and where each slot's value goes.

    Args:
        data: the file's bytes with placeholders, pixel data last.
        slots: (offset, length, name) of every placeholder occurrence.
        pixel_bytes: length of the Pixel Data value at the end of `data` (0: no pixel slot).
    """

    data: bytes
    slots: list[tuple[int, int, str]]
    pixel_bytes: int = 0

    @classmethod
    def build(cls, ds: Dataset, placeholders: dict[str, str], required=(), pixel_bytes: int = 0,
              implicit_vr: bool = False) -> "FileTemplate":
        """Serialise `ds` (with file_meta) and find every placeholder (name -> text) in it.

        Placeholders not in the file are no slot (a SEG copies only some of its images' fields).

        Raises:
            ValueError: a `required` placeholder is missing from the file, or two overlap.
        """
        fp = io.BytesIO()
        with warnings.catch_warnings():  # placeholders are no valid values of their VR (on purpose)
            warnings.simplefilter("ignore")
            ds.save_as(fp, implicit_vr=implicit_vr, little_endian=True, enforce_file_format=True)
        data = fp.getvalue()
        header = data[:len(data) - pixel_bytes]
        slots = []
        for name, text in placeholders.items():
            needle, at = text.encode("ascii"), header.find(text.encode("ascii"))
            if at < 0 and name in required:
                raise ValueError(f"template slot {name!r}: placeholder {text!r} is not in the file")
            while at >= 0:
                slots.append((at, len(needle), name))
                at = header.find(needle, at + len(needle))
        slots.sort()
        for (a, n, first), (b, _, second) in zip(slots, slots[1:]):
            if a + n > b:
                raise ValueError(f"template slots {first!r} and {second!r} overlap")
        return cls(data, slots, pixel_bytes)

    def names(self) -> set[str]:
        return {name for _, _, name in self.slots}

    def render(self, values: dict[str, bytes], pixels: bytes = b"") -> bytearray:
        """The file's bytes with each slot's value and the pixel bytes in place.

        Raises:
            ValueError: a value (or the pixels) is not exactly its slot's length.
        """
        out = bytearray(self.data)
        for at, n, name in self.slots:
            out[at:at + n] = values[name]
        if self.pixel_bytes:
            out[len(out) - self.pixel_bytes:] = pixels
        if len(out) != len(self.data):
            bad = [name for _, n, name in self.slots if len(values[name]) != n]
            raise ValueError(f"template values of the wrong length: {', '.join(bad) or 'pixels'}")
        return out
