"""``depot artifact lineage``: the graph around a version, as text, Graphviz dot or JSON."""

from __future__ import annotations

import argparse
import json

import depot
from depot._lineage import walk
from depot._paths import parse_artifact_path
from depot.metadata.v1 import metadata_pb2 as pb

from ._args import Actions, command
from ._output import message_json, short, show


def register(actions: Actions, path_help: str) -> None:
    p = command(actions, "lineage", lineage, "walk the lineage graph")
    p.add_argument("path", help=path_help)
    p.add_argument("--depth", type=int, default=1, help="steps to walk (1-100)")
    p.add_argument("--direction", choices=["upstream", "downstream", "both"], default="both", help="default: both")
    p.add_argument("--format", choices=["text", "dot"], default="text", help="without --json (default: text)")


def lineage(opts: argparse.Namespace) -> int:
    start = parse_artifact_path(opts.path).version_resource
    directions = ["upstream", "downstream"] if opts.direction == "both" else [opts.direction]
    client = depot.Client()
    nodes: list[tuple[str, pb.LineageNode]] = []
    edges: list[pb.LineageEdge] = []
    for d in directions:
        for page in walk(client, start, d, opts.depth):
            nodes += [(d, n) for n in page.nodes]
            edges += page.edges
    if opts.json:
        return show(
            opts,
            {
                "start": start,
                "nodes": [{"direction": d, **message_json(n)} for d, n in nodes],
                "edges": [message_json(e) for e in edges],
            },
            "",
        )
    if opts.format == "dot":
        print(_dot(start, [n for _, n in nodes], edges))
        return 0
    lines = [short(start)]
    for d, n in nodes:
        arrow = "<-" if d == "upstream" else "->"
        lines.append(f"{'  ' * n.depth}{arrow} {short(n.name)}")
    print("\n".join(lines))
    return 0


def _dot(start: str, nodes: list[pb.LineageNode], edges: list[pb.LineageEdge]) -> str:
    def q(s: str) -> str:
        return json.dumps(short(s))

    out = ["digraph lineage {", "  rankdir=LR;", f"  {q(start)} [shape=box, style=bold];"]
    for n in nodes:
        shape = "ellipse" if n.HasField("run") else "box"
        out.append(f"  {q(n.name)} [shape={shape}];")
    for source, target, kind in sorted({(e.source, e.target, e.kind) for e in edges}):
        out.append(f"  {q(source)} -> {q(target)} [label={json.dumps(kind)}];")
    out.append("}")
    return "\n".join(out)
