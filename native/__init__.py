"""Depot's native engine: file hashing, S3 and GCS listing-page parsing, manifest codec.

Each piece is a Cython extension with a pure-Python twin of the same API and
results (``_hashing`` / ``_hashing_py``, ``_s3page`` / ``_s3page_py``, ``_gcspage`` / ``_gcspage_py``,
``_manifest`` / ``_manifest_py``). The compiled module is used when it imports;
otherwise, or when ``DEPOT_NO_EXTENSIONS`` is set to a non-empty value, the twin
is. The ``*_COMPILED`` flags say which one was picked, so tests can insist on
the compiled one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

NO_EXTENSIONS = bool(os.environ.get("DEPOT_NO_EXTENSIONS"))

if TYPE_CHECKING:
    from ._gcspage_py import GCSListPage, GCSPageError, parse_gcs_page
    from ._hashing_py import HASH_ALGORITHMS, hash_bytes, hash_file, hash_files
    from ._manifest_py import (
        ALGORITHMS,
        MAGIC,
        ArtifactDigester,
        Block,
        EntryMaker,
        ManifestEntry,
        ManifestError,
        ManifestReader,
        ManifestSummary,
        ManifestWriter,
        artifact_digest,
        decode_block,
        decode_payload,
        inflate_block,
        read_block,
        scan_blocks,
    )
    from ._s3page_py import ListPage, S3PageError, parse_list_page

    GCSPAGE_COMPILED: bool
    HASHING_COMPILED: bool
    MANIFEST_COMPILED: bool
    S3PAGE_COMPILED: bool
else:
    # The error and record types live in the twins only, so an exception or
    # entry is the same class whichever implementation produced it.
    from ._gcspage_py import GCSPageError
    from ._manifest_py import ALGORITHMS, MAGIC, Block, ManifestEntry, ManifestError, ManifestSummary
    from ._s3page_py import S3PageError

    GCSPAGE_COMPILED = HASHING_COMPILED = MANIFEST_COMPILED = S3PAGE_COMPILED = False
    if not NO_EXTENSIONS:
        try:
            from ._hashing import HASH_ALGORITHMS, hash_bytes, hash_file, hash_files

            HASHING_COMPILED = True
        except ImportError:
            pass
        try:
            from ._s3page import ListPage, parse_list_page

            S3PAGE_COMPILED = True
        except ImportError:
            pass
        try:
            from ._gcspage import GCSListPage, parse_gcs_page

            GCSPAGE_COMPILED = True
        except ImportError:
            pass
        try:
            from ._manifest import (
                ArtifactDigester,
                EntryMaker,
                ManifestReader,
                ManifestWriter,
                artifact_digest,
                decode_block,
                decode_payload,
                inflate_block,
                read_block,
                scan_blocks,
            )

            MANIFEST_COMPILED = True
        except ImportError:
            pass
    if not HASHING_COMPILED:
        from ._hashing_py import HASH_ALGORITHMS, hash_bytes, hash_file, hash_files
    if not S3PAGE_COMPILED:
        from ._s3page_py import ListPage, parse_list_page
    if not GCSPAGE_COMPILED:
        from ._gcspage_py import GCSListPage, parse_gcs_page
    if not MANIFEST_COMPILED:
        from ._manifest_py import (
            ArtifactDigester,
            EntryMaker,
            ManifestReader,
            ManifestWriter,
            artifact_digest,
            decode_block,
            decode_payload,
            inflate_block,
            read_block,
            scan_blocks,
        )

USING_EXTENSIONS: bool = HASHING_COMPILED and MANIFEST_COMPILED and S3PAGE_COMPILED and GCSPAGE_COMPILED

__all__ = [
    "ALGORITHMS",
    "GCSPAGE_COMPILED",
    "HASH_ALGORITHMS",
    "HASHING_COMPILED",
    "MAGIC",
    "MANIFEST_COMPILED",
    "NO_EXTENSIONS",
    "S3PAGE_COMPILED",
    "USING_EXTENSIONS",
    "ArtifactDigester",
    "Block",
    "EntryMaker",
    "GCSListPage",
    "GCSPageError",
    "ListPage",
    "ManifestEntry",
    "ManifestError",
    "ManifestReader",
    "ManifestSummary",
    "ManifestWriter",
    "S3PageError",
    "artifact_digest",
    "decode_block",
    "decode_payload",
    "hash_bytes",
    "hash_file",
    "hash_files",
    "inflate_block",
    "parse_gcs_page",
    "parse_list_page",
    "read_block",
    "scan_blocks",
]
