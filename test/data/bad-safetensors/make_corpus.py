#!/usr/bin/env python3
"""Writes the malformed safetensors files of this directory (see README.md).

Each file is tiny and wrong in one way. Run from anywhere: python3 make_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def blob(header, data=b"", length=None):
    """8-byte little-endian header length (the real one unless given), header, data."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


T = '"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
OK = "{" + T + "}"
D8 = bytes(range(8))

CASES = {
    "short-file": b"\x10\x00\x00",
    "huge-header-length": blob(OK, D8, length=1 << 63),
    "header-length-over-limit": blob(OK, D8, length=100 << 20),
    "header-past-end": blob(OK, D8, length=len(OK) + 64),
    "header-too-short": blob("{", b"", length=1),
    "truncated-header": blob(OK, D8)[: 8 + len(OK) // 2],
    "truncated-data": blob(OK, D8[:5]),
    "trailing-bytes": blob(OK, D8 + b"\0\0\0\0"),
    "invalid-json": blob('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],}}', D8),
    "invalid-utf8": blob(b'{"t\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', D8),
    "overlong-utf8": blob(b'{"t\xc0\xaf":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', D8),
    "surrogate-utf8": blob(b'{"t\xed\xa0\x80":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', D8),
    "nul-in-header": blob(b'{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}\0', D8),
    "control-character": blob(b'{"t\x01":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', D8),
    "not-an-object": blob("[1, 2, 3]"),
    "leading-space": blob(" " + OK, D8),
    "trailing-newline": blob(OK + "\n", D8),
    "two-values": blob(OK + "{}", D8),
    "deep-nesting": blob('{"a":' + "[" * 2000 + "]" * 2000 + "}"),
    "tensor-not-object": blob('{"t":[1]}'),
    "missing-dtype": blob('{"t":{"shape":[2],"data_offsets":[0,8]}}', D8),
    "missing-shape": blob('{"t":{"dtype":"F32","data_offsets":[0,8]}}', D8),
    "missing-offsets": blob('{"t":{"dtype":"F32","shape":[2]}}', D8),
    "unknown-field": blob('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}', D8),
    "field-twice": blob('{"t":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', D8),
    "unknown-dtype": blob('{"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', D8),
    "dtype-not-string": blob('{"t":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}', D8),
    "negative-shape": blob('{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', D8),
    "fractional-shape": blob('{"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', D8),
    "string-shape": blob('{"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', D8),
    "overflowing-shape": blob(
        '{"t":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}', D8),
    "too-many-dimensions": blob(
        '{"t":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}}', D8),
    "shape-size-mismatch": blob('{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', D8),
    "offsets-past-end": blob('{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', D8),
    "reversed-offsets": blob('{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', D8),
    "three-offsets": blob('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', D8),
    "negative-offset": blob('{"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', D8),
    "overlapping-tensors": blob(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', D8 + D8[:4]),
    "hole": blob(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', D8 + D8[:4]),
    "duplicate-names": blob(
        '{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        '"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', D8),
    "metadata-not-object": blob('{"__metadata__":"x",' + T + "}", D8),
    "metadata-not-string": blob('{"__metadata__":{"k":1},' + T + "}", D8),
    "metadata-twice": blob('{"__metadata__":{},"__metadata__":{},' + T + "}", D8),
    "metadata-key-twice": blob('{"__metadata__":{"k":"a","k":"b"},' + T + "}", D8),
}


def main():
    for name, data in sorted(CASES.items()):
        with open(os.path.join(HERE, name + ".safetensors"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
