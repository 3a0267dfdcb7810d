"""``Api().lineage`` against a real server: consumers in the order they used
the version (not the order the runs were made), the walk paging on that
order, and a producer the caller may not read is None and counted."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import depot
from depot._admin import Admin
from depot._lineage import walk


def test_consumers_come_in_the_order_they_used_the_version(server: Any, tmp_path: Path) -> None:
    kw = {"address": server.address, "api_key": server.admin_key}
    (tmp_path / "f.txt").write_text("x")
    with ExitStack() as runs:
        prep = runs.enter_context(depot.init(entity="team", project="proj", job_type="prep", **kw))
        art = depot.Artifact("ds", type="dataset")
        art.add_file(tmp_path / "f.txt")
        prep.log_artifact(art).wait()
        first, second, third = (
            runs.enter_context(depot.init(entity="team", project="proj", job_type="eval", **kw)) for _ in range(3)
        )
        # Run ids grow in creation order (prep, first, second, third); the
        # uses come in another order, and the producer uses its own version too.
        for run in (third, first, prep, second):
            run.use_artifact("ds:v0")
    used_order = [third.name, first.name, prep.name, second.name]

    api = depot.Api(server.address, server.admin_key)
    lineage = api.lineage("team/proj/ds:v0")
    assert lineage.producer is not None and lineage.producer.name == prep.name
    assert [r.name for r in lineage.consumers] == used_order
    assert lineage.hidden_run_count == 0
    # One node a page: the keyset cursor carries the use time across pages.
    pages = list(walk(api.client, lineage.version.name, "downstream", page_size=1))
    assert [n.name for p in pages for n in p.nodes] == used_order
    assert len(pages) == 4


def test_a_producer_the_caller_may_not_read_is_none_and_counted(server: Any, tmp_path: Path) -> None:
    admin = Admin(depot.Client(server.address, server.admin_key))
    admin.create_entity("acme", "org")
    admin.create_entity("ml", "team", org="acme")
    admin.create_entity("rita", "user", org="acme")
    admin.create_registry("acme", "shared")
    # rita reads the org's registry, not the team that logged into it.
    admin.set_registry_member("acme/shared", "rita", "viewer")
    rita_key = admin.create_key(user="rita").key

    (tmp_path / "m.bin").write_bytes(b"weights")
    kw = {"address": server.address, "api_key": server.admin_key}
    with depot.init(entity="ml", project="p", job_type="train", **kw) as run:
        model = depot.Artifact("model", type="model")
        model.add_file(tmp_path / "m.bin")
        run.log_artifact(model).wait()
        model.link("acme/wandb-registry-shared/published")

    own = depot.Api(server.address, server.admin_key).lineage("ml/p/model:v0")
    assert own.producer is not None and own.producer.name == run.name and own.version.producer_run == run.name
    seen = depot.Api(server.address, rita_key).lineage("acme/wandb-registry-shared/published:v0")
    assert (seen.producer, seen.consumers, seen.hidden_run_count) == (None, [], 1)
    assert seen.version.producer_run == ""
