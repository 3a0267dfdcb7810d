"""The ``depot`` command line: one module per command group, each calling the SDK.

    depot server                                   all services in one process
    depot artifact ls ENTITY/PROJECT/NAME [--alias A] [--tag T]
    depot artifact get PATH [--root D]             download and verify a version
    depot artifact put ENTITY/PROJECT/NAME ITEM... --type T [--alias A]
    depot artifact export PATH [-o FILE] | import MANIFEST ENTITY/PROJECT/NAME --type T
    depot artifact alias add|rm PATH ALIAS...      move aliases onto / off a version
    depot artifact ttl PATH [--set 30d|12h|never|inherit]
    depot artifact link PATH TARGET [--alias A]    TARGET: {org}/wandb-registry-{r}/{c}
    depot artifact lineage PATH [--depth N] [--direction up|down] [--format text|dot]
    depot registry ls ORG | create ORG NAME [--type T]... [--restricted]
    depot registry collections ORG/REGISTRY | links ORG/REGISTRY/COLLECTION
    depot registry member ORG/REGISTRY USER ROLE | unmember ORG/REGISTRY USER
    depot key create [--user U] [--description D] | revoke ID | ls [--user U]
    depot team create NAME [--org ORG] | show NAME | members NAME
    depot team member NAME USER ROLE | unmember NAME USER
    depot team settings NAME [--default-ttl 30d|never] [--ttl-policy members|admins]
    depot user create NAME [--org ORG] | org create NAME | entity ls
    depot gc run [--entity E] [--dry-run] | status [--entity E]   (admins)

PATH is ``entity/project/name[:ref]`` or a registry path
``{org}/wandb-registry-{registry}/{collection}[:ref]``. Tables by default,
``--json`` for scripts (see :mod:`depot.cli._output`). Exit status: 0, 1 with
a one-line reason on an error, 2 for a usage error, 130 on Ctrl-C.

Layout: ``_main`` builds the parser from each group's ``register`` and
dispatches to the ``func`` the chosen subcommand set; ``_output`` renders
tables and JSON; artifact commands call the public SDK (``depot.Api``,
``depot.Artifact``), administration calls ``depot._admin.Admin``.
"""

from ._args import parse_duration
from ._main import main

__all__ = ["main", "parse_duration"]
