"""W&B artifact manifest JSON (v1): export a Depot manifest, import a W&B one.

The JSON W&B writes as ``wandb_manifest.json``::

    {"version": 1,
     "storagePolicy": "wandb-storage-policy-v1",
     "storagePolicyConfig": {"storageLayout": "V2"},
     "contents": {"<path>": {"digest": "...", "size": 12,
                             "ref": "s3://b/k",                      # references only
                             "extra": {"etag": "...", "versionID": "..."}}}}

How Depot entries map onto it, following W&B's own storage handlers:

- uploaded files and ``file://`` references: base64 digest; md5 is W&B's
  default and is untagged, xxh3-128 carries ``extra.alg = "XXH128"``;
- ``s3://`` references: the ETag (hex, unquoted) is the digest, repeated in
  ``extra.etag``; the S3 version id is ``extra.versionID``;
- ``http(s)://`` references: the ETag is the digest; one served without an
  ETag carries its content digest, tagged ``extra.alg`` (``MD5`` too: an
  untagged reference digest reads back as an ETag);
- ``checksum=False`` references: the digest is the URI itself, no size.

The artifact digest is the same function in both systems (md5, or xxh3-128
for W&B's XXH128 manifests, over ``b"wandb-artifact-manifest-v1\\n"`` and
``f"{path}:{digest}\\n"`` in path order), so a Depot md5 artifact exported
here has the digest W&B computes for it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from depot.core import json_values
from depot.core.azure_blob import is_azure_uri
from depot.core.hashing import ALGORITHMS
from depot.core.limits import INT64_MAX
from depot.native import hash_files

from ._artifact import Artifact
from ._exceptions import DigestMismatchError, InvalidArgumentError, NotFoundError
from ._manifest import Manifest, ManifestEntry
from ._paths import EntryTree, check_entry_string, safe_join
from ._rules import check_entry_path, new_hasher, parse_json

__all__ = [
    "STORAGE_POLICY",
    "artifact_from_wandb_manifest",
    "export_wandb_manifest",
    "from_wandb_manifest",
    "to_wandb_manifest",
    "wandb_manifest_digest",
    "write_wandb_manifest",
]

STORAGE_POLICY = "wandb-storage-policy-v1"
_STORAGE_POLICY_CONFIG = {"storageLayout": "V2"}
_DIGEST_PREFIX = b"wandb-artifact-manifest-v1\n"
# W&B tags non-md5 entries in extra["alg"]; an untagged entry is md5.
_ALG_KEY = "alg"
_ALG_TO_WANDB = {"xxh3_128": "XXH128"}
_ALG_FROM_WANDB = {"MD5": "md5", "XXH128": "xxh3_128"}
_REF_SCHEMES = ("file", "s3", "gs", "az", "http", "https")
_ETAG_SCHEMES = ("s3", "gs")
# Reference schemes whose md5 entries are exported with extra.alg = "MD5".
_TAGGED_MD5_SCHEMES = ("http", "https", "s3")
_log = logging.getLogger("depot")
# What json.dumps writes for a str (ensure_ascii), without its per-call setup.
_json_str = json.encoder.encode_basestring_ascii


def _bad(message: str, field: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, field=field)


def _sort_key(path: str) -> bytes:
    return path.encode()


def _extra_dict(e: ManifestEntry) -> dict[str, Any]:
    if not e.extra:
        return {}
    try:
        extra = json.loads(e.extra)
    except ValueError:
        raise _bad(f"entry {e.path!r}: extra is not JSON", f"{e.path}.extra") from None
    if not isinstance(extra, dict):
        raise _bad(f"entry {e.path!r}: extra must be a JSON object", f"{e.path}.extra")
    return extra


def _entry_json(e: ManifestEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"digest": e.digest}
    # W&B leaves size out of checksum=False references (it never looked).
    if not (e.algorithm == "none" and e.size == 0):
        out["size"] = e.size
    if e.ref:
        out["ref"] = e.ref
    extra = _extra_dict(e)
    if e.algorithm in _ALG_TO_WANDB:
        extra[_ALG_KEY] = _ALG_TO_WANDB[e.algorithm]
    elif e.algorithm == "md5" and e.ref and urlsplit(e.ref).scheme in _TAGGED_MD5_SCHEMES:
        # The import reads an untagged http(s)/s3 reference digest as an
        # ETag, which a download then could not verify.
        extra[_ALG_KEY] = "MD5"
    elif e.algorithm not in ("md5", "etag", "none"):
        raise _bad(f"entry {e.path!r}: algorithm {e.algorithm!r} has no W&B form", e.path)
    # W&B's Azure handler records extra = {etag, versionID} like its S3 one.
    if e.algorithm == "etag" and (urlsplit(e.ref).scheme in _ETAG_SCHEMES or is_azure_uri(e.ref)):
        extra.setdefault("etag", e.digest)
    if e.version_id:
        extra["versionID"] = e.version_id
    if extra:
        out["extra"] = extra
    return out


def _entry_text(e: ManifestEntry) -> str:
    """``json.dumps(_entry_json(e), indent=2)`` as a value two levels down, in a fraction of its time.

    ``indent`` makes json use its pure-Python encoder (~30 µs an entry,
    30 s for 1M); here only the rare ``extra`` object goes through it.
    """
    fields = []
    for key, value in _entry_json(e).items():
        if isinstance(value, str):
            text = _json_str(value)
        elif isinstance(value, dict):
            text = json.dumps(value, indent=2).replace("\n", "\n      ")
        else:
            text = json.dumps(value)
        fields.append(f'      "{key}": {text}')
    return "{\n" + ",\n".join(fields) + "\n    }"


def to_wandb_manifest(entries: Iterable[ManifestEntry], digest_algorithm: str = "md5") -> dict[str, Any]:
    """The W&B manifest v1 JSON (as a dict) of Depot entries.

    Args:
        entries: The manifest's entries, in any order (output is path-sorted).
        digest_algorithm: The artifact digest algorithm, ``md5`` or
            ``xxh3_128``. W&B keeps it beside the manifest, not in it; it is
            checked here so that a caller cannot export what W&B cannot digest.

    Raises:
        InvalidArgumentError: An unknown algorithm, a bad path, or a duplicate path.
    """
    if digest_algorithm not in ALGORITHMS:
        raise _bad(
            f"digest_algorithm must be one of {', '.join(ALGORITHMS)}, not {digest_algorithm!r}",
            "digest_algorithm",
        )
    contents: dict[str, Any] = {}
    for e in sorted(entries, key=lambda e: _sort_key(e.path)):
        _check_path(e.path, "path")
        if e.path in contents:
            raise _bad(f"duplicate entry path {e.path!r}", "path")
        contents[e.path] = _entry_json(e)
    return {
        "version": 1,
        "storagePolicy": STORAGE_POLICY,
        "storagePolicyConfig": dict(_STORAGE_POLICY_CONFIG),
        "contents": contents,
    }


def export_wandb_manifest(artifact: Artifact) -> dict[str, Any]:
    """The W&B manifest v1 JSON of an artifact (logged: read from the server), as one dict.

    Holds every entry in memory; :func:`write_wandb_manifest` streams instead.
    """
    return to_wandb_manifest(artifact.files(), artifact.manifest.digest_algorithm)


def write_wandb_manifest(artifact: Artifact, out: TextIO) -> int:
    """Writes an artifact's W&B manifest v1 JSON to ``out`` entry by entry; returns the entry count.

    The text is what ``json.dumps(export_wandb_manifest(artifact), indent=2)``
    gives, but the entries stream from the server and are written as they
    arrive, so memory stays bounded whatever the version's size.

    Raises:
        InvalidArgumentError: As :func:`to_wandb_manifest` (an entry W&B cannot hold).
    """
    digest_algorithm = artifact.manifest.digest_algorithm
    if digest_algorithm not in ALGORITHMS:
        raise _bad(f"the artifact's digest algorithm {digest_algorithm!r} has no W&B form", "digest_algorithm")
    head = json.dumps(
        {
            "version": 1,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": dict(_STORAGE_POLICY_CONFIG),
            "contents": {},
        },
        indent=2,
    )
    # Everything up to the contents' "{" as json.dumps writes it; the
    # entries follow, each as json.dumps indents a value two levels down.
    assert head.endswith('"contents": {}\n}')
    out.write(head[: -len("}\n}")])
    count = 0
    last = b""
    for batch in artifact.files().batches():
        chunk = []
        for e in batch:
            key = _sort_key(e.path)
            if count and key <= last:
                raise _bad(f"entry paths out of order or duplicated at {e.path!r}", "path")
            _check_path(e.path, "path")
            chunk.append(f"{',' if count else ''}\n    {_json_str(e.path)}: {_entry_text(e)}")
            last = key
            count += 1
        out.write("".join(chunk))
    out.write("\n  }\n}" if count else "}\n}")
    return count


def wandb_manifest_digest(data: Mapping[str, Any], digest_algorithm: str = "md5") -> str:
    """The artifact digest W&B computes for a manifest v1 JSON (hex)."""
    if digest_algorithm not in ALGORITHMS:
        raise _bad(f"unknown digest_algorithm {digest_algorithm!r}", "digest_algorithm")
    h = new_hasher(digest_algorithm)
    h.update(_DIGEST_PREFIX)
    contents = _contents(data)
    for path in sorted(contents, key=_sort_key):
        h.update(f"{path}:{contents[path]['digest']}\n".encode())
    return h.hexdigest()


# -- import -----------------------------------------------------------------------------


def _check_path(path: str, field: str) -> None:
    # The SDK's check: a lone surrogate (legal as a JSON escape) is refused
    # as not UTF-8 before the shared rule would try to encode it.
    check_entry_path(path, field)


def _contents(data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise _bad("a W&B manifest must be a JSON object", "manifest")
    version = data.get("version")
    if type(version) is not int:
        raise _bad(f"version must be the integer 1, not {version!r}", "version")
    if version != 1:
        raise _bad(f"unsupported W&B manifest version {version} (only 1)", "version")
    policy = data.get("storagePolicy")
    if policy != STORAGE_POLICY:
        raise _bad(f"storagePolicy must be {STORAGE_POLICY!r}, not {policy!r}", "storagePolicy")
    config = data.get("storagePolicyConfig", {})
    if config is not None and not isinstance(config, Mapping):
        raise _bad("storagePolicyConfig must be an object", "storagePolicyConfig")
    contents = data.get("contents")
    if not isinstance(contents, dict):
        raise _bad("contents must be an object of path -> entry", "contents")
    return contents


def _is_b64_16(digest: str) -> bool:
    try:
        return len(base64.b64decode(digest, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _no_control(value: str, field: str) -> str:
    # Digests and refs feed the artifact digest's "path:digest" lines too,
    # and a manifest cannot carry a lone surrogate in any of them.
    return check_entry_string(value, field, field)


def _extra_json(extra: dict[str, Any], field: str) -> str:
    # A parsed file was bounded by load_wandb_manifest; a dict passed in
    # directly may hold anything, and the server's JSON rule applies to both.
    try:
        text = json.dumps(extra, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise _bad(f"{field} is nested too deeply", field) from None
    except (TypeError, ValueError) as e:
        raise _bad(f"{field} is not JSON: {e}", field) from None
    parse_json(text, field, object_only=True)
    return text


def _entry_from_json(path: str, val: Any) -> ManifestEntry:
    field = f"contents[{path!r}]"
    _check_path(path, field)
    if not isinstance(val, Mapping):
        raise _bad(f"{field} must be an object", field)
    digest = val.get("digest")
    if not isinstance(digest, str) or not digest:
        raise _bad(f"{field}.digest must be a non-empty string", f"{field}.digest")
    _no_control(digest, f"{field}.digest")
    size = val.get("size")
    if size is None:
        size = 0
    elif type(size) is not int or not 0 <= size <= INT64_MAX:
        # A manifest size is an int64: 2**64 was a raw "Value out of range" from protobuf.
        raise _bad(f"{field}.size must be an integer from 0 to {INT64_MAX}, not {size!r}", f"{field}.size")
    ref = val.get("ref")
    if ref is None:
        ref = ""
    elif not isinstance(ref, str) or not ref:
        raise _bad(f"{field}.ref must be a non-empty string", f"{field}.ref")
    _no_control(ref, f"{field}.ref")
    raw_extra = val.get("extra")
    if raw_extra is None:
        raw_extra = {}
    elif not isinstance(raw_extra, Mapping):
        raise _bad(f"{field}.extra must be an object", f"{field}.extra")
    extra = dict(raw_extra)

    tag = extra.pop(_ALG_KEY, None)
    algorithm: str | None = None
    if tag is not None:
        if tag not in _ALG_FROM_WANDB:
            raise _bad(f"{field}.extra.alg {tag!r} is not a known digest algorithm", f"{field}.extra.alg")
        algorithm = _ALG_FROM_WANDB[tag]
    version_id = extra.pop("versionID", "")
    if type(version_id) is int and version_id >= 0:
        version_id = str(version_id)  # W&B's GCS handler records the generation as an int
    if not isinstance(version_id, str):
        raise _bad(f"{field}.extra.versionID must be a string", f"{field}.extra.versionID")
    _no_control(version_id, f"{field}.extra.versionID")

    if ref:
        scheme = urlsplit(ref).scheme
        if scheme not in _REF_SCHEMES:
            raise _bad(
                f"{field}.ref: {scheme or 'scheme-less'} references cannot be imported "
                f"(supported: {', '.join(_REF_SCHEMES)})",
                f"{field}.ref",
            )
        if algorithm is None:
            if digest == ref:
                algorithm = "none"
            elif scheme == "file" or (scheme == "gs" and _is_b64_16(digest)):
                algorithm = "md5"
            else:
                algorithm = "etag"
        # Depot records ETags unquoted, and only as the digest; W&B repeats
        # them in extra (its http handler with the quotes).
        if algorithm == "etag" and extra.get("etag") in (digest, f'"{digest}"'):
            del extra["etag"]
    elif algorithm is None:
        algorithm = "md5"
    if algorithm in ALGORITHMS and not _is_b64_16(digest):
        raise _bad(f"{field}.digest is not a base64 {algorithm} digest", f"{field}.digest")
    return ManifestEntry(
        path=path,
        digest=digest,
        algorithm=algorithm,
        size=size,
        ref=ref,
        version_id=version_id,
        extra=_extra_json(extra, f"{field}.extra") if extra else "",
    )


def from_wandb_manifest(data: Mapping[str, Any]) -> list[ManifestEntry]:
    """Depot entries of a W&B manifest v1 JSON (as a dict), sorted by path bytes.

    Raises:
        InvalidArgumentError: A version other than 1, a malformed field (named
            in ``field``), an unsafe path (``..``, absolute, NUL, control
            characters), a path that is both a file and a directory (``a``
            and ``a/b``), a size outside int64, or a reference scheme Depot
            cannot hold (``wandb-artifact://``).
    """
    contents = _contents(data)
    entries = [_entry_from_json(path, val) for path, val in contents.items()]
    entries.sort(key=lambda e: _sort_key(e.path))
    # "a" and "a/b" both imported would log, then fail at every download.
    tree = EntryTree()
    for e in entries:
        tree.check(e.path, f"contents[{e.path!r}]")
        tree.add(e.path)
    return entries


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _bad(f"duplicate key {k!r} in the manifest JSON", k)
        out[k] = v
    return out


def load_wandb_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a ``wandb_manifest.json``, rejecting malformed JSON and duplicate keys."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise _bad(f"{path} is not UTF-8 text", "manifest") from None
    try:
        data = json_values.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise _bad(f"{path} is nested too deeply", "manifest") from None
    except ValueError as e:  # JSONDecodeError, NaN/Infinity, an integer of thousands of digits
        raise _bad(f"{path} is not valid JSON: {e}", "manifest") from None
    if not isinstance(data, dict):
        raise _bad(f"{path}: a W&B manifest must be a JSON object", "manifest")
    return data


def artifact_from_wandb_manifest(
    manifest: str | os.PathLike[str] | Mapping[str, Any],
    name: str,
    type: str,
    *,
    root: str | os.PathLike[str] | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    digest_algorithm: str | None = None,
) -> Artifact:
    """Builds an unlogged Depot artifact from a W&B manifest v1.

    W&B keeps the artifact digest's algorithm beside the manifest, not in
    it: pass ``digest_algorithm`` (``md5`` or ``xxh3_128``, W&B's MD5 and
    XXH128) when you know it. Without it, it is inferred from the entries:
    ``xxh3_128`` when any entry is tagged XXH128, else ``md5``; that misses
    only an XXH128 W&B artifact holding no uploaded file. The artifact's
    ``digest_algorithm`` says which was used, and a log line (INFO) whether
    it was inferred.

    References are added as recorded (same digests, ETags and version ids; no
    re-listing). Uploaded W&B files are not references, so their bytes must be
    at hand: ``root`` is the directory W&B downloaded the artifact into, and
    each file's digest must match the manifest's before it is added (with
    the manifest's algorithm, md5 unless tagged XXH128).

    Args:
        manifest: A path to ``wandb_manifest.json`` or its parsed dict.
        name: The Depot artifact name.
        type: The Depot artifact type.
        root: Where the W&B files are (needed when there are non-reference entries).
        description: Stored with the version.
        metadata: Stored with the version.
        digest_algorithm: The artifact digest's algorithm (default: inferred).

    Raises:
        InvalidArgumentError: A malformed manifest, files without ``root``, or
            an unknown ``digest_algorithm``.
        NotFoundError: A non-reference entry's file is missing under ``root``.
        DigestMismatchError: A file's size or digest differs from the manifest.
    """
    data = manifest if isinstance(manifest, Mapping) else load_wandb_manifest(manifest)
    entries = from_wandb_manifest(data)
    files = [e for e in entries if not e.ref]
    if digest_algorithm is None:
        digest_algorithm = "xxh3_128" if any(e.algorithm == "xxh3_128" for e in entries) else "md5"
        _log.info("%s: the W&B manifest's digest algorithm is inferred from its entries: %s", name, digest_algorithm)
    elif digest_algorithm not in ALGORITHMS:
        raise _bad(
            f"digest_algorithm must be one of {', '.join(ALGORITHMS)}, not {digest_algorithm!r}", "digest_algorithm"
        )
    art = Artifact(name, type, description, metadata, hash_algorithm=digest_algorithm)
    art._manifest = Manifest(digest_algorithm=digest_algorithm)
    if files:
        if root is None:
            raise _bad(
                f"the manifest has {len(files)} uploaded files (e.g. {files[0].path!r}); "
                "pass root= the directory W&B downloaded them into",
                "root",
            )
        _attach_files(files, Path(root))
    for e in entries:
        art._put(e)
    return art


def _attach_files(files: list[ManifestEntry], root: Path) -> None:
    locals_: list[Path] = []
    for e in files:
        p = safe_join(root, e.path)
        if not p.is_file():
            raise NotFoundError(
                f"{e.path}: not a reference in the W&B manifest, and {p} does not exist",
                field=e.path,
            )
        if p.stat().st_size != e.size:
            raise DigestMismatchError(
                f"{e.path}: {p} has {p.stat().st_size} bytes, the manifest says {e.size}",
                field=e.path,
            )
        locals_.append(p)
    algs = sorted({e.algorithm for e in files})
    digests = hash_files([str(p) for p in locals_], algs)
    for e, p, raws in zip(files, locals_, digests):
        got = base64.b64encode(raws[algs.index(e.algorithm)]).decode()
        if got != e.digest:
            raise DigestMismatchError(
                f"{e.path}: {p} has {e.algorithm} {got}, the manifest says {e.digest}", field=e.path
            )
        e.local_path = str(p)
