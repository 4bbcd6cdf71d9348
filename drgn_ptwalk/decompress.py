# SPDX-License-Identifier: LGPL-2.1-or-later
"""
Decompressing a page the way the kernel's compressors wrote it (zram's ``comp_algorithm``, zswap's
``compressor``), with the maintained libraries from PyPI and :mod:`drgn_ptwalk._lzo` for lzo-rle.

=========== =============================================== ==========================================
name        kernel's format                                 decompressed with
=========== =============================================== ==========================================
``lzo``     LZO1X-1 (``lzo1x_1_compress``)                   python-lzo (``pip install python-lzo``)
``lzo-rle`` LZO1X with run-length-encoded zeros (v5.1+)      :func:`drgn_ptwalk._lzo.lzo1x_decompress_safe`
``lz4``     LZ4 block (``LZ4_compress_default``)             lz4 (``lz4.block``, ``pip install lz4``)
``lz4hc``   LZ4 block (``LZ4_compress_HC``)                  lz4
``zstd``    zstd frame (``zstd_compress_cctx``)              zstandard (``pip install zstandard``)
``deflate`` raw deflate (``zlib_deflateInit2(-windowBits)``)  zlib (``wbits=-15`` reads any window)
=========== =============================================== ==========================================

A missing library is a :class:`DecompressError` saying what to install; the caller turns it into an
``ERROR`` fate of that page.
"""

import zlib
from types import ModuleType

from drgn_ptwalk.errors import DecompressError

__all__ = ("DecompressError", "decompress_page")


def _need(module: str, pip: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DecompressError(f"decompressing needs the {pip!r} package: pip install {pip}") from None


def decompress_page(algorithm: str, data: bytes, page_size: int) -> bytes:
    """
    Decompress one page compressed by the kernel's *algorithm*.

    :param algorithm: the kernel's name (``"lzo-rle"``, ``"lz4"``, ... as zram's ``comp_algorithm`` and
        zswap's ``pool->tfm_name`` hold it)
    :param data: the compressed bytes (the object's stored length)
    :param page_size: ``PAGE_SIZE`` of the dumped kernel
    :return: exactly *page_size* bytes
    :raises DecompressError: if the algorithm is unknown or unsupported, a library is missing, or the data
        does not decompress to exactly one page
    """
    alg = algorithm.strip().lower()
    try:
        if alg == "lzo-rle":
            from drgn_ptwalk._lzo import lzo1x_decompress_safe

            out = lzo1x_decompress_safe(data, page_size)
        elif alg == "lzo":
            lzo = _need("lzo", "python-lzo")
            out = lzo.decompress(bytes(data), False, page_size)
        elif alg in ("lz4", "lz4hc"):
            block = _need("lz4.block", "lz4")
            out = block.decompress(bytes(data), uncompressed_size=page_size)
        elif alg == "zstd":
            zstandard = _need("zstandard", "zstandard")
            out = zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=page_size)
        elif alg == "deflate":
            d = zlib.decompressobj(wbits=-15)
            out = d.decompress(bytes(data), page_size)
            if not d.eof:
                raise DecompressError("deflate: the stream does not end within one page")
        else:
            raise DecompressError(f"compressor {algorithm!r} is not supported (lzo, lzo-rle, lz4, lz4hc, zstd, "
                                  "deflate are)")
    except DecompressError:
        raise
    except Exception as e:  # each library has its own error type; all mean "corrupt input"
        raise DecompressError(f"{alg}: corrupt compressed data ({type(e).__name__}: {e})") from None
    if len(out) != page_size:
        raise DecompressError(f"{alg}: decompressed to {len(out)} bytes, not a page ({page_size})")
    return bytes(out)
