"""The rules both sides of Depot share: the SDK and the services import them, they import neither.

Pure Python over ``depot.native``: no grpc, no protobuf, no service code.
Each module holds one family of rules:

- ``errors``: :class:`~depot.core.errors.InvalidValue`, what every rule
  raises; each side re-raises it as its own exception type at its edge.
- ``limits``: numeric bounds of the wire format (``INT64_MAX``).
- ``hashing``: the content digest algorithms and their incremental hashers.
- ``entry_paths``: where a manifest entry may point.
- ``names``: name parts (entity, project, artifact, alias) and ``vN``.
- ``json_values``: JSON that PostgreSQL ``jsonb`` and ``json.dumps`` can hold.
- ``addresses``: ``grpcs://`` / ``grpc://`` addresses and loopback.
"""
