"""The quickstart: version a small dataset and watch Depot's semantics.

Logs files as v0, logs identical content again (gets v0 back), changes one
file (gets v1), resolves `latest`, downloads and verifies it, and shows the
producing and consuming runs.

Each run uses a project of its own (``quickstart-<time>``) in the API key's
user entity, so running it again on a kept data dir starts from v0 again
instead of deduplicating onto the previous run's versions.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path

import depot


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="depot-quickstart-"))
    data = work / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels.csv").write_text("id,label\n1,cat\n2,dog\n")
    for i in range(3):
        (data / "images" / f"{i}.bin").write_bytes(bytes([i]) * 4096)

    project = f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    with depot.init(project=project, job_type="prepare") as run:
        first = depot.Artifact("pets", type="dataset", description="three tiny images")
        first.add_dir(data)
        run.log_artifact(first, aliases=["candidate"]).wait()
        print(f"1. logged files            -> {first.qualified_name} aliases={first.aliases}")

        same = depot.Artifact("pets", type="dataset")
        same.add_dir(data)
        run.log_artifact(same).wait()
        print(f"2. logged identical content -> {same.version} (same digest {same.digest[:12]}...)")

        (data / "labels.csv").write_text("id,label\n1,cat\n2,dog\n3,bird\n")
        changed = depot.Artifact("pets", type="dataset")
        changed.add_dir(data)
        run.log_artifact(changed).wait()
        print(f"3. changed one file        -> {changed.version}")
        producer = run.name

    with depot.init(project=project, job_type="train") as train:
        latest = train.use_artifact("pets:latest")
        print(f"4. resolved pets:latest    -> {latest.version}")
        root = latest.download(work / "download")
        print(f"5. downloaded and verified -> {len(latest.files())} files in {root}")
        consumer = train.name

    lineage = depot.Api().lineage(latest.qualified_name)
    print(f"6. lineage of {latest.qualified_name}:")
    # None when the producing run is in an entity this key may not read.
    made_by = lineage.producer
    print(f"     produced by {f'{made_by.name} ({made_by.job_type})' if made_by else '(hidden from you)'}")
    for r in lineage.consumers:
        print(f"     used by     {r.name} ({r.job_type})")
    if lineage.hidden_run_count:
        print(f"     and {lineage.hidden_run_count} runs you may not read")
    assert first.version == "v0" and same.version == "v0" and changed.version == "v1"
    # Ours, or (run with a key that may not read it) hidden and counted.
    assert made_by.name == producer if made_by else lineage.hidden_run_count > 0
    assert latest.version == "v1"
    assert [r.name for r in lineage.consumers] == [consumer]
    print("quickstart: OK")


if __name__ == "__main__":
    main()
