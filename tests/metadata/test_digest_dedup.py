"""Digest deduplication is unambiguous (issue 8, round 2, item 1).

W&B's artifact digest hashes ``path:digest\\n`` lines. A path may hold ':'
and an unchecksummed reference's digest is its URI, so two different
manifests can spell the same lines: ``pp:s3`` + ``//b/k`` and ``pp`` +
``s3://b/k``. Deduplicating on that digest alone let a member commit the
forged manifest first and swallow a later honest commit. A version is
reused only when its stored manifest is the same one (same manifest id,
the SHA-256 of the manifest's bytes).
"""

from __future__ import annotations

from support.world import COLL, PROJECT, Meta, World, rid

from depot.manifest.v1 import manifest_pb2 as mpb
from depot.metadata.v1 import metadata_pb2 as pb

REF = "s3://b/k"
# Both spell the digest line "pp:s3://b/k".
FORGED = mpb.ManifestEntry(path="pp:s3", algorithm="etag", digest="//b/k", size=1, ref=REF)
HONEST = mpb.ManifestEntry(path="pp", algorithm="none", digest=REF, size=1, ref=REF)


def _log(m: Meta, entry: mpb.ManifestEntry) -> pb.ArtifactVersion:
    ref = m.put_manifest("team-a", [entry])
    return m.CreateArtifactVersion(
        pb.CreateArtifactVersionRequest(
            parent=PROJECT,
            artifact="ds",
            type="dataset",
            manifest=ref,
            request_id=rid(),
        )
    )


def _entries(m: Meta, version: pb.ArtifactVersion) -> list[tuple[str, str, str, str]]:
    req = mpb.ReadManifestRequest(entity="team-a", manifest_id=version.manifest_id)
    batches = m.man.ReadManifest(req, metadata=m.md)
    return [(e.path, e.algorithm, e.digest, e.ref) for batch in batches for e in batch.entries]


def test_the_two_manifests_share_an_artifact_digest(world: World) -> None:
    bob = world["bob"]
    forged, honest = bob.put_manifest("team-a", [FORGED]), bob.put_manifest("team-a", [HONEST])
    # The premise: W&B's digest cannot tell them apart, their manifests can.
    assert forged.digest == honest.digest
    assert forged.manifest_id != honest.manifest_id


def test_an_honest_commit_is_not_swallowed_by_a_forged_one(world: World) -> None:
    bob, alice = world["bob"], world["alice"]
    v0 = _log(bob, FORGED)
    v1 = _log(alice, HONEST)
    assert (v0.name, v1.name) == (f"{COLL}/versions/v0", f"{COLL}/versions/v1")
    assert _entries(alice, v1) == [("pp", "none", REF, REF)]
    assert _entries(alice, v0) == [("pp:s3", "etag", "//b/k", REF)]
    assert list(alice.get(f"{COLL}/versions/latest").aliases) == ["latest"]
    assert alice.get(f"{COLL}/versions/latest").name == v1.name


def test_the_same_content_still_deduplicates(world: World) -> None:
    bob = world["bob"]
    v0 = _log(bob, HONEST)
    again = _log(bob, HONEST)
    assert again.name == v0.name == f"{COLL}/versions/v0"
    assert again.uid == v0.uid


def test_commit_of_a_pending_version_dedups_only_the_same_manifest(world: World) -> None:
    """The older shape (pending, then CommitArtifactVersion) follows the same rule."""
    bob = world["bob"]

    def pending() -> str:
        return bob.CreateArtifactVersion(
            pb.CreateArtifactVersionRequest(parent=PROJECT, artifact="ds", type="dataset", request_id=rid())
        ).uid

    v0 = bob.commit(pending(), bob.put_manifest("team-a", [FORGED]), [])
    v1 = bob.commit(pending(), bob.put_manifest("team-a", [HONEST]), [])
    again = bob.commit(pending(), bob.put_manifest("team-a", [HONEST]), [])
    assert (v0.index, v1.index, again.index) == (0, 1, 1)
    assert again.uid == v1.uid
    assert _entries(bob, v1) == [("pp", "none", REF, REF)]
