"""Pixel bytes straight into a preallocated slice, with the decoder chosen per transfer syntax.

Uncompressed pixels are read with one seek and one `readinto` (no copy). Compressed frames go
to the fastest installed decoder: pylibjpeg-rle (RLE), pyjpegls/CharLS (JPEG-LS), openjpeg
(JPEG 2000 / HTJ2K). Anything else falls back to pydicom's own pixel handling, and a transfer
syntax nothing can decode raises UnsupportedTransferSyntax.
"""

import numpy as np
from pydicom import encaps, uid as uids

from .errors import DamagedFile, UnsupportedTransferSyntax
from .headers import InstanceHeader

NATIVE_LE = {uids.ImplicitVRLittleEndian, uids.ExplicitVRLittleEndian}
BIG_ENDIAN = {uids.ExplicitVRBigEndian}
RLE = {uids.RLELossless}
JPEG_LS = {uids.JPEGLSLossless, uids.JPEGLSNearLossless}
JPEG_2000 = {uids.JPEG2000Lossless, uids.JPEG2000, "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
             "1.2.840.10008.1.2.4.203"}


def stored_dtype(h: InstanceHeader) -> np.dtype:
    """numpy dtype of the stored values (before rescale)."""
    if h.bits_allocated not in (8, 16, 32) or h.samples != 1:
        raise DamagedFile(f"{h.path}: cannot read {h.samples} sample(s) of {h.bits_allocated} bits as a grayscale "
                          f"volume", "load single-channel 8/16/32-bit images only", h.path)
    kind = "i" if h.pixel_representation == 1 else "u"
    return np.dtype(f"<{kind}{h.bits_allocated // 8}")


def _fix_sign(frame: np.ndarray, h: InstanceHeader) -> np.ndarray:
    """Signed values stored in fewer bits than allocated: sign-extend them (as pydicom does)."""
    if h.pixel_representation == 1 and 0 < h.bits_stored < h.bits_allocated:
        shift = h.bits_allocated - h.bits_stored
        frame <<= shift
        frame >>= shift
    return frame


def _fragments_frames(h: InstanceHeader, n_frames: int) -> list[bytes]:
    with open(h.path, "rb") as f:
        f.seek(h.pixel_offset)
        buffer = f.read(h.pixel_length)
    try:
        return list(encaps.generate_frames(buffer, number_of_frames=n_frames))
    except (ValueError, KeyError, EOFError, TypeError) as e:
        raise DamagedFile(f"{h.path}: encapsulated pixel data is damaged ({e})",
                          "replace the file with an intact copy", h.path) from None


def _decode_compressed(data: bytes, h: InstanceHeader, out: np.ndarray) -> None:
    ts = h.transfer_syntax
    n = h.rows * h.cols
    if ts in RLE:
        from rle.rle import decode_frame
        raw = decode_frame(data, n, h.bits_allocated, "<")
    elif ts in JPEG_LS:
        from jpeg_ls import decode_from_buffer
        raw = decode_from_buffer(data)
    else:
        from openjpeg import decode
        raw = decode(data).tobytes()
    flat = np.frombuffer(raw, dtype=out.dtype)
    if flat.size != n:
        raise DamagedFile(f"{h.path}: decoded {flat.size} pixels, expected {h.rows}x{h.cols}",
                          "replace the file with an intact copy", h.path)
    out.reshape(-1)[:] = flat
    _fix_sign(out, h)


def _pydicom_frames(h: InstanceHeader) -> np.ndarray:
    import pydicom
    from pydicom.pixels import get_decoder

    try:
        get_decoder(h.transfer_syntax)
    except NotImplementedError:
        raise UnsupportedTransferSyntax(
            f"{h.path}: transfer syntax {uids.UID(h.transfer_syntax).name} ({h.transfer_syntax}) is not supported",
            "convert the file (e.g. gdcmconv --raw) or install a decoder plugin for it", h.path,
            uid=h.transfer_syntax) from None
    try:
        ds = pydicom.dcmread(h.path)
        arr = ds.pixel_array
    except RuntimeError as e:
        if "plugin" in str(e).lower() or "no decoders" in str(e).lower() or "unable to decode" in str(e).lower():
            raise UnsupportedTransferSyntax(f"{h.path}: no installed decoder can read {h.transfer_syntax}: {e}",
                                            "install the decoder plugin pydicom names", h.path,
                                            uid=h.transfer_syntax) from None
        raise DamagedFile(f"{h.path}: pixel data cannot be decoded: {e}", "replace the file", h.path) from None
    except (ValueError, EOFError, KeyError, TypeError, AttributeError) as e:
        raise DamagedFile(f"{h.path}: pixel data cannot be decoded: {e}", "replace the file", h.path) from None
    return arr.reshape(h.n_frames or 1, h.rows, h.cols)


def read_frames(h: InstanceHeader, out: np.ndarray) -> None:
    """Decode all frames of file `h` into `out` (frames, rows, cols) of stored_dtype(h)."""
    ts = h.transfer_syntax
    n_frames = out.shape[0]
    if ts in NATIVE_LE or ts in BIG_ENDIAN:
        need = out.nbytes
        if h.pixel_offset < 0 or h.pixel_length < need:
            raise DamagedFile(f"{h.path}: pixel data holds {h.pixel_length} bytes, {n_frames} frame(s) of "
                              f"{h.rows}x{h.cols}x{h.bits_allocated} bits need {need}",
                              "replace the file with an intact copy", h.path)
        with open(h.path, "rb") as f:
            f.seek(h.pixel_offset)
            got = f.readinto(memoryview(out).cast("B"))
        if got != need:
            raise DamagedFile(f"{h.path} is truncated: read {got} of {need} pixel bytes",
                              "replace the file with an intact copy", h.path)
        if ts in BIG_ENDIAN:
            out.byteswap(inplace=True)
        _fix_sign(out, h)
    elif ts in RLE or ts in JPEG_LS or ts in JPEG_2000:
        for k, frame in enumerate(_fragments_frames(h, n_frames)):
            try:
                _decode_compressed(frame, h, out[k])
            except DamagedFile:
                raise
            except Exception as e:  # decoders raise assorted types for corrupt streams
                raise DamagedFile(f"{h.path}: frame {k + 1} cannot be decoded ({type(e).__name__}: {e})",
                                  "replace the file with an intact copy", h.path) from None
    else:
        out[:] = _pydicom_frames(h)
