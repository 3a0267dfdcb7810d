"""The artifact model: build one from files and references, log it, read it back.

``Artifact`` is a version being built or a logged one; ``LinkedArtifact`` a
logged version seen through a registry link; ``RunInfo`` a run as lineage
sees it. The bytes move in ``_upload`` and ``_download``, registry and lineage calls go
through ``_registry`` and ``_lineage``: this module imports them, never the
reverse.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import stat
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Self
from urllib.parse import unquote, urlsplit

from google.protobuf import field_mask_pb2

from depot.core.azure_blob import AzureUriError, is_azure_uri, parse_azure_uri
from depot.core.hashing import ALGORITHMS
from depot.core.limits import INT64_MAX
from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb
from depot.native import hash_files

from . import _deletion, _download, _lineage, _registry, _ttl, _upload, _verify
from ._client import Client, request_id
from ._exceptions import (
    AlreadyExistsError,
    DepotError,
    EntryNotFoundError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    TooManyObjectsError,
    UnsupportedError,
)
from ._manifest import ArtifactFiles, Manifest, ManifestEntry, b64
from ._paths import EntryTree, check_entry_size, check_entry_string
from ._references import http_reference_entries
from ._rules import check_download_path, check_entry_path, check_name, check_settable_alias, parse_json

DEFAULT_MAX_OBJECTS = 10_000_000
# Where a run (or Artifact.save) logs when neither a project nor DEPOT_PROJECT is given.
DEFAULT_PROJECT = "uncategorized"
# W&B's add_file/add_dir policies; Depot treats both alike (see add_file).
_POLICIES = ("mutable", "immutable")
_log = logging.getLogger("depot")


def _str_list(value: object, field: str) -> list[str]:
    # W&B takes aliases and tags as lists; one bare string is a common slip
    # that would otherwise be read as a list of characters.
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(a, str) for a in value):
        raise InvalidArgumentError(f"{field} must be a list of strings", field=field)
    return list(value)


def settable_aliases(value: object, field: str = "aliases") -> list[str]:
    """The aliases a caller may ask for, ``latest`` dropped (Depot keeps it on the newest version).

    W&B's own default alias list is ``["latest"]``, so code written for it
    passes ``latest``; ``vN`` is still refused (the index is the version's).
    """
    out: list[str] = []
    for a in _str_list(value, field):
        if a != "latest":
            out.append(check_settable_alias(a, field))
    return list(dict.fromkeys(out))


def _names(value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(n, str) for n in value):
        raise InvalidArgumentError("names must be a list of entry paths", field="names")
    return list(value)


def _prefix(value: object, field: str) -> str:
    """A directory of entry paths, as ReadManifestRequest.prefix takes it ("" for all).

    One trailing "/" is dropped ("data/" is "data"); anything else that is no
    entry path ("/", "a//", "../x") is refused rather than read as "everything".
    """
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{field} must be a string, not {type(value).__name__}", field=field)
    try:
        return check_download_path(value.removesuffix("/"), field)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(
            f"{field} {value!r} is not a directory of entries: {e.message}", field=field
        ) from None


def _in_dir(path: str, prefix: str) -> bool:
    # Directory semantics: "data" holds "data" and "data/x", never "data2/x" or "data.csv".
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _is_write_mode(mode: object) -> bool:
    # new_file() writes a new file; a read or append mode has nothing to read.
    if not isinstance(mode, str) or len(set(mode)) != len(mode) or not set(mode) <= set("wxbt+"):
        return False
    return len(set(mode) & set("wx")) == 1 and len(set(mode) & set("bt")) <= 1


def _hash_local(paths: list[Path], algorithm: str) -> list[tuple[bytes, ...]]:
    # A file that vanished or cannot be read since it was listed is the
    # caller's bad argument, not an OSError from deep in the hashing.
    try:
        return hash_files([str(p) for p in paths], (algorithm,))
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {e.filename or paths[0]}: {e.strerror}", field="local_path") from None


def _local_kind(value: object, field: str) -> tuple[Path, str]:
    """``value`` as a Path and what is there: ``file``, ``dir``, ``other`` or ``""`` (nothing)."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(f"{field} must be a path, not {type(value).__name__}", field=field)
    try:
        path = Path(value)
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return Path(value), ""
    except (OSError, TypeError, ValueError) as e:
        # A name too long for the filesystem, a NUL, a bytes path: the
        # caller's argument, not an OSError from deep in pathlib.
        reason = getattr(e, "strerror", None) or str(e)
        raise InvalidArgumentError(f"cannot use {value!r} as {field}: {reason}", field=field) from None
    if stat.S_ISREG(st.st_mode):
        return path, "file"
    return path, "dir" if stat.S_ISDIR(st.st_mode) else "other"


def _check_policy(policy: object) -> None:
    if policy is not None and policy not in _POLICIES:
        raise InvalidArgumentError(f"policy must be 'mutable' or 'immutable', not {policy!r}", field="policy")


def _metadata(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"metadata must be a dict, not {type(value).__name__}", field="metadata")
    try:
        # NaN and infinities are not JSON; the server would refuse them later,
        # in a background log.
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"metadata is not JSON-serializable: {e}", field="metadata") from None
    return dict(value)


class Artifact:
    """A versioned collection of files and references, shaped like ``wandb.Artifact``.

    Args:
        name: The collection name (letters, digits, ``_``, ``.``, ``-``; up to 128).
        type: The artifact type, fixed when the name is first logged (``dataset``, ``model``...).
        description: Free text shown with the version.
        metadata: A JSON-serializable dict stored with the version.
        incremental: Build on the collection's latest version: when logged,
            its entries that this artifact neither replaces nor removes are
            kept (by digest: nothing is uploaded again).
        use_as: Accepted for W&B code; recorded, not used by Depot.
        hash_algorithm: ``xxh3_128`` (default) or ``md5`` (W&B's) for uploaded files.
    """

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        use_as: str | None = None,
        *,
        hash_algorithm: str = "xxh3_128",
    ):
        if hash_algorithm not in ALGORITHMS:
            raise InvalidArgumentError(f"hash_algorithm must be one of {', '.join(ALGORITHMS)}", field="hash_algorithm")
        if description is not None and not isinstance(description, str):
            raise InvalidArgumentError("description must be a string", field="description")
        self.name = check_name(name, "name", "artifact name")
        self.type = check_name(type, "type", "artifact type")
        self.description = description or ""
        self.metadata = _metadata(metadata)
        self.hash_algorithm = hash_algorithm
        if not isinstance(incremental, bool):
            raise InvalidArgumentError(f"incremental must be True or False, not {incremental!r}", field="incremental")
        self.incremental = incremental
        self.use_as = use_as
        # Paths remove() dropped: an incremental log leaves them out of the base version too.
        self._removed: set[str] = set()
        # Aliases and tags as the caller edits them; save() (or the log) sends the difference.
        self._aliases: list[str] = []
        self._tags: list[str] = []
        # Whether the log stored this artifact's description, metadata and tags
        # (False when identical content returned an existing version).
        self._fields_applied: bool | None = None
        # timedelta, None (forever) or ArtifactTTL.INHERIT (the team default).
        self._ttl: _ttl.TTL = _ttl.ArtifactTTL.INHERIT
        self._manifest = Manifest()
        # Paths as files and as directories: "a" and "a/b" cannot both be entries.
        self._tree = EntryTree()
        self._size_total = 0
        # s3:// references the server lists when the artifact is logged.
        self._server_references: list[mpb.Reference] = []
        # new_file() writes here; removed when the artifact is garbage-collected.
        self._staging: str | None = None
        self._client: Client | None = None
        self._version: pb.ArtifactVersion | None = None
        self._future: concurrent.futures.Future[Artifact] | None = None
        self._manifest_loaded = True
        # Set once wait() has raised the background error to the caller.
        self._error_reported = False

    # -- building ------------------------------------------------------------

    def _check_mutable(self) -> None:
        if self._version is not None or self._future is not None:
            raise DepotError("a logged artifact is immutable; create a new Artifact to change it")

    def _put(self, entry: ManifestEntry) -> ManifestEntry:
        # Every entry passes here (files, references, W&B imports), so what
        # the manifest cannot carry fails now, not in a background log.
        path = check_entry_path(entry.path)
        check_entry_size(entry.size, path)
        check_entry_string(entry.digest, f"{path}.digest", f"entry {path!r}: digest")
        check_entry_string(entry.algorithm, f"{path}.algorithm", f"entry {path!r}: algorithm")
        check_entry_string(entry.ref, f"{path}.ref", f"entry {path!r}: ref")
        check_entry_string(entry.version_id, f"{path}.version_id", f"entry {path!r}: version id")
        if entry.extra:
            parse_json(entry.extra, f"{path}.extra", object_only=True)
        old = self._manifest.entries.get(path)
        total = self._size_total + entry.size - (old.size if old else 0)
        if total > INT64_MAX:
            raise InvalidArgumentError(
                f"entry {path!r}: the artifact's sizes would sum past {INT64_MAX} bytes", field=f"{path}.size"
            )
        self._tree.add(path)
        self._size_total = total
        self._manifest.entries[path] = entry
        return entry

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool | None = False,
        skip_cache: bool | None = False,
        policy: str | None = "mutable",
        overwrite: bool = False,
    ) -> ManifestEntry:
        """Adds one local file, stored under ``name`` (default: its file name), like W&B's ``add_file``.

        Args:
            local_path: The file.
            name: Its path in the artifact.
            is_tmp: Name it after its content, as W&B does: the file name's
                stem becomes the first 20 hex digits of its digest.
            skip_cache: Accepted for W&B code; Depot keeps no upload cache.
            policy: ``mutable`` or ``immutable``. Depot copies neither way:
                the file is read when the artifact is logged, and a file
                changed since it was added fails the log (DigestMismatchError)
                instead of uploading other bytes than the digest says.
            overwrite: Replace an entry already at ``name`` with other content.

        Raises:
            InvalidArgumentError: ``name`` holds an entry with other content
                and ``overwrite`` is False (W&B's ValueError), or a bad argument.
        """
        self._check_mutable()
        _check_policy(policy)
        path, kind = _local_kind(local_path, "local_path")
        if kind != "file":
            raise InvalidArgumentError(f"{path} is not a file", field="local_path")
        entry_path = check_entry_path(path.name if name is None else name, "name")
        ((raw,),) = _hash_local([path], self.hash_algorithm)
        if is_tmp:
            head, _, file_name = entry_path.rpartition("/")
            _, dot, ext = file_name.partition(".")
            entry_path = f"{head}{'/' if head else ''}{raw.hex()[:20]}{dot}{ext}"
        self._tree.check(entry_path)
        self._check_overwrite(entry_path, b64(raw), overwrite, "overwrite")
        return self._put(
            ManifestEntry(
                path=entry_path,
                digest=b64(raw),
                algorithm=self.hash_algorithm,
                size=path.stat().st_size,
                local_path=str(path.resolve()),
            )
        )

    def _check_overwrite(self, path: str, digest: str, overwrite: bool, flag: str) -> None:
        # W&B's rule: the same path with the same content is no conflict.
        old = self._manifest.entries.get(path)
        if old is not None and old.digest != digest and not overwrite:
            raise InvalidArgumentError(
                f"the artifact has an entry {path!r} with other content already; pass {flag}=True to replace it",
                field="name",
            )

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        skip_cache: bool | None = False,
        policy: str | None = "mutable",
        merge: bool = False,
    ) -> None:
        """Adds every file under a directory, keeping relative paths (under ``name``), like W&B's ``add_dir``.

        Args:
            local_path: The directory.
            name: The directory in the artifact the files go under.
            skip_cache: Accepted for W&B code; Depot keeps no upload cache.
            policy: ``mutable`` or ``immutable``; see :meth:`add_file`.
            merge: Replace entries already added with other content; without
                it such a file is refused and nothing is added.
        """
        self._check_mutable()
        _check_policy(policy)
        root, kind = _local_kind(local_path, "local_path")
        if kind != "dir":
            raise InvalidArgumentError(f"{root} is not a directory", field="local_path")
        prefix = f"{check_entry_path(name.strip('/') if isinstance(name, str) else name, 'name')}/" if name else ""
        files = sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            # Every path is checked before any is added: a refused file name
            # (too long, not UTF-8, a file where a directory is) leaves the
            # artifact as it was.
            self._tree.check(check_entry_path(prefix + p.relative_to(root).as_posix()))
        digests = _hash_local(files, self.hash_algorithm)
        for p, (raw,) in zip(files, digests):
            self._check_overwrite(prefix + p.relative_to(root).as_posix(), b64(raw), merge, "merge")
        for p, (raw,) in zip(files, digests):
            rel = p.relative_to(root).as_posix()
            self._put(
                ManifestEntry(
                    path=prefix + rel,
                    digest=b64(raw),
                    algorithm=self.hash_algorithm,
                    size=p.stat().st_size,
                    local_path=str(p.resolve()),
                )
            )

    @contextlib.contextmanager
    def new_file(self, name: str, mode: str = "w", encoding: str | None = None) -> Iterator[IO[Any]]:
        """Opens a new file to write; it is added to the artifact when closed.

        Raises:
            InvalidArgumentError: A bad name, a mode that does not write a new
                file (``w``/``x``, optionally ``b``/``t``/``+``), an unknown
                encoding, or a name that is a file where another entry needs
                a directory (or the reverse).
        """
        self._check_mutable()
        check_entry_path(name, "name")
        self._tree.check(name)
        if isinstance(mode, str) and "x" in mode and name in self._manifest.entries:
            # "x" is exclusive creation, as in open() and wandb's new_file.
            raise AlreadyExistsError(f"the artifact has an entry {name!r} already", field="name")
        if not _is_write_mode(mode):
            raise InvalidArgumentError(
                f"new_file mode must write a new file ('w', 'x', with 'b', 't' or '+'), not {mode!r}", field="mode"
            )
        if "b" in mode:
            if encoding is not None:
                raise InvalidArgumentError("a binary mode takes no encoding", field="encoding")
        else:
            encoding = encoding or "utf-8"
            try:
                codecs.lookup(encoding)
            except (LookupError, TypeError):
                raise InvalidArgumentError(f"unknown encoding {encoding!r}", field="encoding") from None
        try:
            if self._staging is None:
                self._staging = tempfile.mkdtemp(prefix="depot-staging-")
                weakref.finalize(self, shutil.rmtree, self._staging, True)
            # A directory of its own per call: the staged file never meets
            # another call's file or directory, whatever the entry names.
            target = Path(tempfile.mkdtemp(dir=self._staging)) / "file"
            f = open(target, mode, encoding=encoding)
        except OSError as e:
            raise DepotError(f"new_file {name!r}: cannot stage it: {e.strerror or e}", field="name") from None
        except LookupError as e:  # a codec that is not a text encoding (rot13)
            raise InvalidArgumentError(f"encoding {encoding!r}: {e}", field="encoding") from None
        with f:
            yield f
        self.add_file(target, name=name)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
        *,
        allow_empty: bool = False,
    ) -> list[ManifestEntry]:
        """Tracks data by reference, without copying it.

        ``file://`` paths are hashed here (a directory becomes one entry per
        file); ``http(s)://`` URLs are checked here (ETag, else the content's
        digest); ``s3://`` and ``gs://`` prefixes are listed by the manifest service when
        the artifact is logged. With ``checksum=False`` the URI itself is the
        one entry.
        More files than ``max_objects`` is an error, never a silent cut.
        An ``s3://`` prefix that matches no object is an error (most often a
        typo) unless ``allow_empty=True``.
        """
        self._check_mutable()
        limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
        if type(limit) is not int or not 1 <= limit <= INT64_MAX:
            raise InvalidArgumentError(
                f"max_objects must be an integer from 1 to {INT64_MAX}, not {limit!r}", field="max_objects"
            )
        if not isinstance(allow_empty, bool):
            raise InvalidArgumentError(f"allow_empty must be True or False, not {allow_empty!r}", field="allow_empty")
        if not isinstance(checksum, bool):
            raise InvalidArgumentError(f"checksum must be True or False, not {checksum!r}", field="checksum")
        if name is not None:
            check_entry_path(name.strip("/") if isinstance(name, str) else name, "name")
        # The URI is recorded as the entry's ref (s3:// as the server's listing
        # prefix): UTF-8 without control characters, like every ref.
        check_entry_string(uri, "uri", "reference URI")
        try:
            parts = urlsplit(uri)
        except ValueError as e:
            raise InvalidArgumentError(f"invalid reference URI {uri!r}: {e}", field="uri") from None
        azure = is_azure_uri(uri)
        if azure:
            try:
                parse_azure_uri(uri)  # a SAS token or bad name fails here, before it leaves this machine
            except AzureUriError as err:
                raise InvalidArgumentError(str(err), field="uri") from None
        if parts.scheme in ("http", "https") and not azure:
            # HEAD/GET from this machine: the server never fetches user URLs.
            entries = http_reference_entries(uri, name, checksum, limit, self.hash_algorithm)
            return [self._put(e) for e in entries]
        if not checksum:
            base = name or (parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.netloc)
            return [self._put(ManifestEntry(base, uri, "none", 0, ref=uri))]
        if parts.scheme in ("s3", "gs") or azure:
            # Listed and checksummed by the manifest service when the
            # artifact is logged: millions of keys never cross the wire.
            self._server_references.append(
                mpb.Reference(uri=uri, name=name or "", max_objects=limit, allow_empty=allow_empty)
            )
            return []
        if parts.scheme != "file":
            raise InvalidArgumentError(
                f"unsupported reference scheme {parts.scheme!r} (this SDK handles file://)",
                field="uri",
            )
        local, kind = _local_kind(unquote(parts.path), "uri")
        if kind == "file":
            ((raw,),) = _hash_local([local], self.hash_algorithm)
            return [
                self._put(
                    ManifestEntry(
                        name or local.name,
                        b64(raw),
                        self.hash_algorithm,
                        local.stat().st_size,
                        ref=local.resolve().as_uri(),
                    )
                )
            ]
        if kind != "dir":
            raise NotFoundError(f"reference {uri} does not exist")
        files = []
        for p in sorted(local.rglob("*")):
            if p.is_file():
                files.append(p)
                if len(files) > limit:
                    raise TooManyObjectsError(
                        f"reference {uri} has more than max_objects={limit} files",
                        field="max_objects",
                    )
        prefix = f"{name.strip('/')}/" if name else ""
        for p in files:
            self._tree.check(check_entry_path(prefix + p.relative_to(local).as_posix()))
        digests = _hash_local(files, self.hash_algorithm)
        out = []
        for p, (raw,) in zip(files, digests):
            out.append(
                self._put(
                    ManifestEntry(
                        prefix + p.relative_to(local).as_posix(),
                        b64(raw),
                        self.hash_algorithm,
                        p.stat().st_size,
                        ref=p.resolve().as_uri(),
                    )
                )
            )
        return out

    def remove(self, item: str | os.PathLike[str] | ManifestEntry) -> None:
        """Removes an entry, or every entry under a directory, like W&B's ``remove``.

        On an ``incremental`` artifact the path is also left out of the
        version it builds on.

        Raises:
            EntryNotFoundError: Nothing is at that path (nor under it), and
                (incremental) it was no path to drop from the base version.
        """
        self._check_mutable()
        path = (
            item.path if isinstance(item, ManifestEntry) else os.fspath(item) if isinstance(item, os.PathLike) else item
        )
        if not isinstance(path, str):
            raise InvalidArgumentError(f"remove takes an entry path, not {type(item).__name__}", field="item")
        path = check_download_path(path.removesuffix("/"), "item")
        gone = [p for p in self._manifest.entries if _in_dir(p, path)]
        if not gone and not self.incremental:
            raise EntryNotFoundError(f"artifact {self.name} has no entry {path!r} to remove", field="item")
        for p in gone:
            del self._manifest.entries[p]
        # EntryTree only grows; removal is rare, so rebuild it from what is left.
        self._tree = EntryTree()
        for p in self._manifest.entries:
            self._tree.add(p)
        self._size_total = sum(e.size for e in self._manifest.entries.values())
        self._removed.add(path)

    def get(self, name: str) -> Any:
        """W&B's ``get`` of a logged media object (a ``wandb.Table``...): not in Depot.

        Raises:
            UnsupportedError: Always; Depot stores files, not W&B media objects.
        """
        raise UnsupportedError(
            "Artifact.get returns W&B media objects (wandb.Table, wandb.Image...), which Depot does not have: "
            "use get_entry(name).download() and read the file"
        )

    def add(self, obj: Any, name: str, overwrite: bool = False) -> ManifestEntry:
        """W&B's ``add`` of a media object: not in Depot.

        Raises:
            UnsupportedError: Always; write the object to a file and use :meth:`add_file`.
        """
        raise UnsupportedError(
            "Artifact.add stores W&B media objects (wandb.Table, wandb.Image...), which Depot does not have: "
            "write the object to a file and use add_file"
        )

    # -- after logging ---------------------------------------------------------

    def wait(self, timeout: float | None = None) -> Artifact:
        """Blocks until a background log finishes; raises its error if it failed."""
        if self._future is not None:
            try:
                self._future.result(timeout)
            except BaseException:
                self._error_reported = True
                raise
        return self

    def _logged(self) -> pb.ArtifactVersion:
        self.wait()
        if self._version is None:
            raise DepotError("the artifact has not been logged yet")
        return self._version

    @property
    def ttl(self) -> _ttl.TTL:
        """How long the version lives after commit: a timedelta, or None for forever.

        Before logging it is what you set (``depot.ArtifactTTL.INHERIT`` by
        default: the team's default TTL). Once logged it is the TTL in effect,
        the team default included. Setting it on a logged artifact updates the
        server at once (the team's ttl_policy decides whether members may).
        """
        if self._version is not None:
            return _ttl.from_version(self._version)
        return self._ttl

    @ttl.setter
    def ttl(self, value: _ttl.TTL) -> None:
        value = _ttl.check(value)
        if self._version is None:
            if self._future is not None:
                raise DepotError("wait() for the log to finish before changing the ttl")
            self._ttl = value
            return
        assert self._client is not None
        upd = pb.ArtifactVersion(name=self._version.name)
        _ttl.to_request(upd, value)
        self._version = self._client.call(
            self._client.artifacts.UpdateArtifactVersion,
            pb.UpdateArtifactVersionRequest(
                version=upd,
                update_mask=field_mask_pb2.FieldMask(paths=["ttl"]),
                request_id=request_id(),
            ),
        )
        self._ttl = value

    @property
    def ttl_remaining(self) -> timedelta | None:
        """Time until a logged version expires; None when it never does (or is linked)."""
        return _ttl.remaining(self._logged())

    def logged_by(self) -> RunInfo | None:
        """The run that logged this version, or None."""
        runs = self._neighbour_runs("upstream")
        return runs[0] if runs else None

    def used_by(self) -> list[RunInfo]:
        """The runs that used this version, oldest use first."""
        return self._neighbour_runs("downstream")

    def _neighbour_runs(self, direction: str) -> list[RunInfo]:
        v = self._logged()
        assert self._client is not None
        nodes = _lineage.neighbours(self._client, v.name, direction)
        return [RunInfo._from_pb(self._client, n.run) for n in nodes if n.HasField("run")]

    @property
    def version(self) -> str:
        """``vN`` of the logged version."""
        return f"v{self._logged().index}"

    @property
    def aliases(self) -> list[str]:
        """The aliases: edit this list (or assign one) and :meth:`save`, as in W&B.

        Before logging they are added to those ``log_artifact`` is given.
        ``latest`` is Depot's to place (on the newest version): adding or
        removing it here changes nothing.
        """
        if self._future is not None:
            self.wait()
        return self._aliases

    @aliases.setter
    def aliases(self, value: list[str]) -> None:
        self._aliases = _str_list(value, "aliases")

    @property
    def tags(self) -> list[str]:
        """The version's tags: edit this list (or assign one) and :meth:`save`, as in W&B."""
        if self._future is not None:
            self.wait()
        return self._tags

    @tags.setter
    def tags(self, value: list[str]) -> None:
        self._tags = _str_list(value, "tags")

    @property
    def metadata_applied(self) -> bool | None:
        """Whether logging stored this artifact's description, metadata and tags.

        None before logging. False when identical content was logged already
        (the existing version is returned as stored, like W&B: its
        description, metadata and tags are kept, this artifact's new aliases
        are added). The artifact then shows what the server stored; edit it
        and :meth:`save` to change the existing version.
        """
        if self._future is not None:
            self.wait()
        return self._fields_applied

    def _pending_references(self) -> None:
        if self._server_references and self._version is None and self._future is None:
            uris = ", ".join(r.uri for r in self._server_references[:3])
            raise FailedPreconditionError(
                f"the artifact has references the server lists when it is logged ({uris}); "
                "its digest and size are known only after run.log_artifact(...).wait()",
                field="digest",
            )

    @property
    def digest(self) -> str:
        """The W&B artifact digest (hex) of the entries.

        Raises:
            FailedPreconditionError: Unlogged, with references still to be
                listed by the server (``s3://``, ``gs://``, Azure Blob): their entries
                are not known yet.
        """
        if self._version is not None or self._future is not None:
            return self._logged().digest
        self._pending_references()
        return self._manifest.digest

    @property
    def digest_algorithm(self) -> str:
        """The artifact digest's algorithm: ``md5`` or ``xxh3_128`` (W&B's MD5 and XXH128)."""
        if self._version is not None or self._future is not None:
            return self._logged().digest_algorithm
        return self._manifest.digest_algorithm

    @property
    def size(self) -> int:
        if self._version is not None or self._future is not None:
            return self._logged().size
        self._pending_references()
        return sum(e.size for e in self._manifest.entries.values())

    @property
    def id(self) -> str:
        return self._logged().uid

    @property
    def qualified_name(self) -> str:
        v = self._logged()
        parts = v.collection.split("/")
        return f"{parts[1]}/{parts[3]}/{parts[5]}:v{v.index}"

    @property
    def source_name(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def created_at(self) -> datetime:
        return self._logged().commit_time.ToDatetime()

    @property
    def producer_run(self) -> str:
        return self._logged().producer_run

    @property
    def manifest(self) -> Manifest:
        """Entries by path, and the digest.

        For a logged artifact this is lazy: ``manifest.entries`` reads every
        entry from the server on first use and keeps them all in memory.
        For a large version use :meth:`files` (streamed) or :meth:`get_entry`.
        """
        self._entries_remote()
        return self._manifest

    def files(
        self, names: list[str] | None = None, prefix: str | None = None, per_page: int | None = None
    ) -> ArtifactFiles:
        """The entries in path order, optionally only some, like W&B's ``files()``.

        A logged artifact's entries stream from the server in batches each
        time the result is iterated, filtered there, so a 10M-entry version
        never sits in memory: iterate it, or ``list()`` it when it is small.
        ``len()`` is the version's file count (with filters it counts the
        stream). There is no indexing.

        Args:
            names: Only the entries at these paths (absent ones are skipped).
            prefix: Only the entries in this directory: ``data`` is ``data``
                and ``data/...``, never ``data2/...`` or ``data.csv``.
            per_page: Accepted for W&B code; the server sizes the batches.
        """
        names = _names(names)
        prefix = _prefix(prefix, "prefix")
        if self._entries_remote():
            src = self._source()
            filtered = names is not None or bool(prefix)

            def count() -> int:
                if not filtered:
                    return src.file_count
                return sum(len(b) for b in src.entries(names=names, prefix=prefix))

            return ArtifactFiles(lambda: src.entries(names=names, prefix=prefix), count)
        wanted = None if names is None else set(names)
        entries = [
            e
            for e in self._manifest.sorted_entries()
            if _in_dir(e.path, prefix) and (wanted is None or e.path in wanted)
        ]
        return ArtifactFiles(lambda: iter([entries]), lambda: len(entries))

    def get_entry(self, name: str) -> ManifestEntry:
        """The entry at path ``name``, like ``wandb.Artifact.get_entry``.

        A logged artifact asks the server for that one path (it seeks the
        stored manifest's block index; nothing else is read or kept).

        Raises:
            EntryNotFoundError: No entry has that path (also a ``KeyError``, as in W&B).
        """
        entry: ManifestEntry | None = None
        why = ""
        if isinstance(name, str) and name:
            if self._entries_remote():
                try:
                    found = [e for batch in self._source().entries(names=[name]) for e in batch]
                except InvalidArgumentError as e:
                    # No entry can have a malformed path: as W&B, a KeyError.
                    found, why = [], f" ({e.message})"
                entry = found[0] if found else None
            else:
                entry = self._manifest.entries.get(name)
        if entry is None:
            raise EntryNotFoundError(f"artifact {self.name} has no entry {name!r}{why}", field="name")
        return entry

    def get_path(self, name: str) -> ManifestEntry:
        """The entry at path ``name``; W&B's older name for :meth:`get_entry`."""
        return self.get_entry(name)

    def _entries_remote(self) -> bool:
        """Whether the entries must come from the server: logged, and not in memory.

        ``_manifest_loaded`` False (a version read from the server, or one
        logged here whose references the server listed) means ``_manifest``
        does not hold the version's entries: it becomes a lazy manifest that
        reads them all only if ``manifest.entries`` is used.
        """
        if not self._manifest_loaded:
            v = self._logged()
            src = self._source()
            self._manifest = Manifest(
                load=lambda: {e.path: e for batch in src.entries() for e in batch},
                digest_algorithm=v.digest_algorithm,
            )
            self._manifest_loaded = True
        return not self._manifest.loaded

    def _source(self) -> _download.LoggedSource:
        v = self._logged()
        assert self._client is not None
        return _download.LoggedSource(
            self._client,
            v.collection.split("/")[1],
            v.manifest_id,
            Path("artifacts") / f"{self.name}:v{v.index}",
            v.file_count,
            v.size,
        )

    @classmethod
    def _from_version(cls, client: Client, v: pb.ArtifactVersion) -> Self:
        art = cls(v.collection.rsplit("/", 1)[-1], v.type, v.description)
        art._client = client
        art._adopt(v)
        art._manifest_loaded = False
        art._ttl = _ttl.from_version(v)
        return art

    def _adopt(self, v: pb.ArtifactVersion) -> None:
        """Shows the version as the server stored it (the editable fields too)."""
        self._version = v
        self.description = v.description
        # As stored: not re-checked, so an old odd value never makes a version unreadable.
        self.metadata = json.loads(v.metadata_json) if v.metadata_json else {}
        self._aliases = list(v.aliases)
        self._tags = list(v.tags)

    def save(self, project: str | None = None, settings: Any = None) -> None:
        """Persists edits, or logs an artifact never logged, like W&B's ``Artifact.save``.

        A logged version: the changed description, metadata and tags are sent
        in one UpdateArtifactVersion, aliases added and removed (the server's
        checks apply: roles, reserved names); the artifact then shows what is
        stored. An unlogged artifact is logged by a new run (job type
        ``auto``) in ``project``, as W&B does, and waited for.

        Raises:
            UnsupportedError: ``settings`` (a ``wandb.Settings``) was given.
        """
        if settings is not None:
            raise UnsupportedError("Artifact.save(settings=...) takes wandb.Settings, which Depot does not have")
        if self._version is None and self._future is None:
            self._save_new(project)
            return
        v = self._logged()
        assert self._client is not None
        c = self._client
        upd = pb.ArtifactVersion(name=v.name)
        mask: list[str] = []
        if self.description != v.description:
            if not isinstance(self.description, str):
                raise InvalidArgumentError("description must be a string", field="description")
            upd.description = self.description
            mask.append("description")
        metadata = _metadata(self.metadata)
        if metadata != (json.loads(v.metadata_json) if v.metadata_json else {}):
            upd.metadata_json = json.dumps(metadata) if metadata else ""
            mask.append("metadata_json")
        tags = sorted(set(_str_list(self._tags, "tags")))
        if tags != sorted(v.tags):
            upd.tags.extend(tags)
            mask.append("tags")
        target, stored = self._alias_state(v)
        want = settable_aliases([a for a in self._aliases if a not in stored])
        # "latest" is Depot's: neither kept nor dropped by an edit.
        drop = [a for a in stored if a not in self._aliases and a != "latest"]
        if mask:
            v = c.call(
                c.artifacts.UpdateArtifactVersion,
                pb.UpdateArtifactVersionRequest(
                    version=upd, update_mask=field_mask_pb2.FieldMask(paths=mask), request_id=request_id()
                ),
            )
        if drop:
            v = c.call(
                c.artifacts.RemoveAliases,
                pb.RemoveAliasesRequest(version=target, aliases=drop, request_id=request_id()),
            )
        if want:
            v = c.call(
                c.artifacts.AddAliases, pb.AddAliasesRequest(version=target, aliases=want, request_id=request_id())
            )
        link = self._version.link if self._version is not None and self._version.HasField("link") else None
        if link is not None and not v.HasField("link"):
            v.link.CopyFrom(link)
        self._adopt(v)

    def _save_new(self, project: str | None) -> None:
        """Logs this artifact from a run of its own (job type ``auto``), as W&B's ``save`` does.

        The run is made here rather than through ``depot.init``: ``_run``
        builds on this module, not the reverse.
        """
        client = Client()
        entity = os.environ.get("DEPOT_ENTITY") or client.call(client.access.GetCaller, pb.GetCallerRequest()).user
        project = check_name(project or os.environ.get("DEPOT_PROJECT") or DEFAULT_PROJECT, "project", "project")
        parent = f"entities/{entity}/projects/{project}"
        run = client.call(
            client.artifacts.CreateRun,
            pb.CreateRunRequest(parent=parent, run=pb.Run(job_type="auto"), request_id=request_id()),
        )
        state = "failed"
        try:
            logged_into(self, client, log_artifact(client, parent, run.name, self, []))
            state = "finished"
        finally:
            client.call(
                client.artifacts.FinishRun, pb.FinishRunRequest(name=run.name, state=state, request_id=request_id())
            )

    def _alias_state(self, v: pb.ArtifactVersion) -> tuple[str, list[str]]:
        """What alias edits name, and the aliases stored there."""
        return v.name, list(v.aliases)

    def unlink(self) -> None:
        """W&B's ``unlink`` of a version reached through a registry link.

        Raises:
            FailedPreconditionError: This artifact was not reached through a
                link (``Api().artifact("{org}/wandb-registry-.../...")`` gives one).
        """
        raise FailedPreconditionError(
            f"{self.name} was not reached through a registry link; unlink the LinkedArtifact that "
            "link() or Api().artifact('{org}/wandb-registry-{registry}/{collection}:...') returns"
        )

    def _batches(self, prefix: str) -> tuple[Iterable[list[ManifestEntry]], int | None, int | None]:
        """The entries under ``prefix`` a batch at a time, with their count and size when known."""
        if self._entries_remote():
            src = self._source()
            whole = not prefix
            return src.entries(prefix=prefix), src.file_count if whole else None, src.size if whole else None
        entries = [e for e in self._manifest.sorted_entries() if _in_dir(e.path, prefix)]
        return [entries], len(entries), sum(e.size for e in entries)

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
    ) -> Path:
        """Fetches the files into ``root``, each verified, W&B's ``Artifact.download``; returns ``root``.

        Entries stream from the server and are fetched in parallel with
        bounded memory; a file already in ``root`` with the right digest is
        kept, so an interrupted download resumes. The first error stops the
        rest and is raised at once, saying how many files arrived. A
        progress bar is drawn on stderr when it is a terminal.

        Args:
            root: Where to put the files (default ``artifacts/{name}:v{N}``).
            allow_missing_references: Skip references whose object is gone
                instead of failing.
            skip_cache: Neither use nor fill the local reference cache.
            path_prefix: Only the entries in this directory (``data`` is
                ``data`` and ``data/...``, never ``data2/...``).
        """
        prefix = _prefix(path_prefix, "path_prefix")
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise InvalidArgumentError(f"root must be a path, not {type(root).__name__}", field="root")
        src = self._source()
        target = _download.prepare_root(root if root is not None else src.default_root)
        batches, count, size = self._batches(prefix)
        _download.download(
            src,
            batches,
            target,
            allow_missing=bool(allow_missing_references),
            skip_cache=bool(skip_cache),
            total_objects=count,
            total_bytes=size,
        )
        return target

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Checks a downloaded tree against the manifest, like W&B's ``Artifact.verify``.

        Every file's digest is recomputed (references recorded with an
        opaque digest, such as a multipart ETag, are checked by size), and
        files under ``root`` that are not in the artifact are extra.

        Raises:
            DigestMismatchError: Files that differ, are missing or are extra
                (the first few of each named).
        """
        src = self._source()
        target = Path(root) if root is not None else src.default_root
        batches, _, _ = self._batches("")
        _verify.verify(batches, target)

    def checkout(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Makes ``root`` hold exactly the artifact: downloads it, then deletes every other file there."""
        target = self.download(root)
        batches, _, _ = self._batches("")
        _verify.remove_extra(batches, target)
        return target

    def link(self, target_path: str, aliases: list[str] | None = None) -> LinkedArtifact:
        """Links this logged version into a registry collection (created if absent).

        Args:
            target_path: ``{org}/wandb-registry-{registry}/{collection}`` or
                ``{org}/registry/{registry}/{collection}``.
            aliases: Aliases for the link in that collection (``latest`` is automatic).

        Returns:
            The version as seen through the link (its registry index and aliases).
            Linking the same version again returns the same link.
        """
        v = self._logged()
        assert self._client is not None
        return _linked(self._client, _registry.link_version(self._client, v, target_path, aliases))

    def delete(self, delete_aliases: bool = False) -> None:
        """Deletes this logged version (W&B's ``Artifact.delete``).

        It is gone from every read at once (``latest`` moves to the newest
        live version) and ``Api().undelete_artifact`` restores it until its
        purge time, the server's grace period (7 days by default) after the
        delete; then it is removed for good. Deleting it again does nothing.

        Args:
            delete_aliases: Also drop the aliases it holds besides ``latest``
                (kept for an undelete); without it such a version is refused.

        Raises:
            FailedPreconditionError: It holds aliases and ``delete_aliases`` is
                False, or it is linked into a registry (unlink it first); the
                message names them.
        """
        v = self._logged()
        assert self._client is not None
        self._version = _deletion.delete_version(self._client, v.name, delete_aliases)

    def __repr__(self) -> str:
        if self._version is not None:
            return f"<Artifact {self.qualified_name} type={self.type}>"
        return f"<Artifact {self.name} type={self.type} (not logged)>"


class LinkedArtifact(Artifact):
    """A version reached through a registry link.

    ``version`` and ``aliases`` are the link's own (its index and aliases in the
    registry collection); ``source_version`` names the version that was linked.
    """

    @property
    def _link(self) -> pb.LinkInfo:
        return self._logged().link

    @property
    def version(self) -> str:
        """``vN`` of the link in its registry collection."""
        return f"v{self._link.index}"

    def _adopt(self, v: pb.ArtifactVersion) -> None:
        super()._adopt(v)
        # Its aliases are the link's, in the registry collection.
        self._aliases = list(v.link.aliases)

    def _alias_state(self, v: pb.ArtifactVersion) -> tuple[str, list[str]]:
        return v.link.name, list(v.link.aliases)

    @property
    def registry_path(self) -> str:
        """``{org}/wandb-registry-{registry}/{collection}``."""
        parts = self._link.collection.split("/")
        return f"{parts[1]}/wandb-registry-{parts[3]}/{parts[5]}"

    @property
    def qualified_name(self) -> str:
        return f"{self.registry_path}:{self.version}"

    @property
    def source_version(self) -> str:
        """``entity/project/name:vN`` of the linked version."""
        v = self._logged()
        parts = v.collection.split("/")
        return f"{parts[1]}/{parts[3]}/{parts[5]}:v{v.index}"

    @property
    def source_aliases(self) -> list[str]:
        return list(self._logged().aliases)

    def unlink(self) -> None:
        """Removes this link from its registry collection (the version stays)."""
        assert self._client is not None
        _registry.unlink(self._client, self._link.name)


def artifact_from_version(client: Client, v: pb.ArtifactVersion) -> Artifact:
    """An Artifact for a version message; a LinkedArtifact when named through a link."""
    if v.HasField("link"):
        return _linked(client, v)
    return Artifact._from_version(client, v)


def _linked(client: Client, v: pb.ArtifactVersion) -> LinkedArtifact:
    art = LinkedArtifact._from_version(client, v)
    # Named as the registry collection shows it.
    art.name = v.link.collection.rsplit("/", 1)[-1]
    return art


@dataclass(frozen=True)
class RunInfo:
    """A run as lineage sees it (read-only)."""

    name: str
    job_type: str
    state: str
    _client: Client

    @classmethod
    def _from_pb(cls, client: Client, run: pb.Run) -> RunInfo:
        return cls(run.name, run.job_type, run.state, client)

    @property
    def entity(self) -> str:
        return self.name.split("/")[1]

    @property
    def project(self) -> str:
        return self.name.split("/")[3]

    @property
    def id(self) -> str:
        return self.name.split("/")[5]

    def logged_artifacts(self) -> list[Artifact]:
        """Versions this run logged."""
        return self._neighbour_versions("downstream")

    def used_artifacts(self) -> list[Artifact]:
        """Versions this run used."""
        return self._neighbour_versions("upstream")

    def _neighbour_versions(self, direction: str) -> list[Artifact]:
        nodes = _lineage.neighbours(self._client, self.name, direction)
        return [artifact_from_version(self._client, n.version) for n in nodes if n.HasField("version")]


def logged_into(art: Artifact, client: Client, v: pb.ArtifactVersion) -> Artifact:
    """Makes ``art`` the logged version ``v`` (as stored)."""
    art._client = client
    art._adopt(v)
    if art._server_references:
        # The server listed entries this process never saw.
        art._manifest_loaded = False
    return art


def _merge_base(client: Client, parent: str, art: Artifact) -> None:
    """Adds the latest version's entries this incremental artifact neither replaces nor removes.

    The entries keep their digests (and, for uploaded files, their blobs:
    the upload finds them stored and sends nothing). The first version of a
    collection has no base.
    """
    try:
        base = client.call(
            client.artifacts.GetArtifactVersion,
            pb.GetArtifactVersionRequest(name=f"{parent}/artifacts/{art.name}/versions/latest"),
        )
    except NotFoundError:
        return
    src = Artifact._from_version(client, base)._source()
    for batch in src.entries():
        for e in batch:
            if e.path in art._manifest.entries or any(_in_dir(e.path, r) for r in art._removed):
                continue
            art._put(ManifestEntry(e.path, e.digest, e.algorithm, e.size, e.ref, e.version_id, e.extra))


def log_artifact(client: Client, parent: str, run: str, art: Artifact, aliases: list[str]) -> pb.ArtifactVersion:
    """Stores the artifact's bytes and manifest, then creates the version committed, in one call.

    The artifact then shows the version as stored. Identical content gives
    the existing version: its aliases are added to it, and when its stored
    description, metadata or tags differ from the artifact's they are kept
    (``metadata_applied`` is False and a warning is logged), as W&B does.
    """
    if art.incremental:
        _merge_base(client, parent, art)
    ref = _upload.store_manifest(client, parent.split("/")[1], art._manifest, art._server_references)
    tags = sorted(set(art._tags))
    req = pb.CreateArtifactVersionRequest(
        parent=parent,
        artifact=art.name,
        type=art.type,
        description=art.description,
        metadata_json=json.dumps(art.metadata) if art.metadata else "",
        run=run,
        manifest=ref,
        aliases=settable_aliases([*art._aliases, *aliases]),
        tags=tags,
        request_id=request_id(),
    )
    _ttl.to_request(req, art._ttl)
    v = client.call(client.artifacts.CreateArtifactVersion, req)
    stored = json.loads(v.metadata_json) if v.metadata_json else {}
    # Compared as JSON, as stored: a tuple or an int key in the caller's
    # metadata comes back as a list or a string without anything being lost.
    sent = json.loads(json.dumps(art.metadata)) if art.metadata else {}
    applied = (v.description, stored, sorted(v.tags)) == (art.description, sent, tags)
    if not applied:
        _log.warning(
            "%s: the same content is logged already as v%d; its stored description, metadata and tags "
            "are kept (edit the artifact and save() to change them)",
            art.name,
            v.index,
        )
    art._fields_applied = applied
    return v
