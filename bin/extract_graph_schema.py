#!/usr/bin/env python3
"""Extract the Graph v1.0 types the product reads from Microsoft's CSDL into a compact JSON fixture.

    python bin/extract_graph_schema.py [--metadata ../shared/graph/v1.0-cleanMetadata.xml] \
        [--out tests/graph_schema/v1_0_types.json]

The metadata is Microsoft's published description of Graph v1.0
(microsoftgraph/msgraph-metadata, clean_v10_metadata/cleanMetadata.xml). The fixture keeps, for
each root type below and every complex or enum type its properties reach: the base type, each
structural property's type and nullability (inherited ones folded in), the navigation
properties' names, and enum members. The suite reads only the fixture (tests/test_graph_schema.py),
never the metadata: run this again when Microsoft's metadata moves on, and review the diff.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
NAMESPACE = "microsoft.graph"
ALIAS = "graph"

# What the product reads from Graph (and the emulator therefore answers with).
ROOTS = [
    "event", "attendee", "dateTimeTimeZone", "emailAddress", "responseStatus", "location", "recipient",
    "itemBody", "patternedRecurrence", "recurrencePattern", "recurrenceRange", "onlineMeetingInfo",
    "place", "room", "roomList", "subscription", "scheduleInformation", "scheduleItem", "workingHours",
    "freeBusyError", "user", "calendar", "singleValueLegacyExtendedProperty", "changeNotification",
    "changeNotificationCollection", "resourceData",
]
REPO = Path(__file__).resolve().parent.parent
DEFAULT_METADATA = REPO.parent / "shared" / "graph" / "v1.0-cleanMetadata.xml"
DEFAULT_OUT = REPO / "tests" / "graph_schema" / "v1_0_types.json"


def short(type_name: str) -> str:
    """'graph.attendee' / 'microsoft.graph.attendee' → 'attendee'; Edm and collections kept."""
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        return f"Collection({short(type_name[len('Collection('):-1])})"
    for prefix in (ALIAS + ".", NAMESPACE + "."):
        if type_name.startswith(prefix):
            return type_name[len(prefix):]
    return type_name


def element_type(type_name: str) -> str:
    t = short(type_name)
    return t[len("Collection("):-1] if t.startswith("Collection(") else t


def extract(metadata: Path) -> dict:
    root = ET.parse(metadata).getroot()  # noqa: S314 - Microsoft's published metadata, a file we chose
    schema = next(s for s in root.iter(EDM + "Schema") if s.get("Namespace") == NAMESPACE)
    index = {el.get("Name"): el for el in schema if el.tag in (EDM + "EntityType", EDM + "ComplexType", EDM + "EnumType")}
    out: dict[str, dict] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in out or name.startswith("Edm.") or name not in index:
            continue
        el = index[name]
        kind = el.tag[len(EDM):]
        if kind == "EnumType":
            out[name] = {"kind": "enum", "members": [m.get("Name") for m in el.iter(EDM + "Member")]}
            continue
        entry = {"kind": "entity" if kind == "EntityType" else "complex", "base": None, "abstract": el.get("Abstract") == "true",
                 "open": el.get("OpenType") == "true", "properties": {}, "navigation": []}
        chain, cur = [], el
        while cur is not None:
            chain.append(cur)
            base = cur.get("BaseType")
            cur = index.get(short(base)) if base else None
        entry["base"] = short(el.get("BaseType")) if el.get("BaseType") else None
        for level in reversed(chain):  # inherited first, as Graph serializes them
            for p in level:
                if p.tag == EDM + "Property":
                    entry["properties"][p.get("Name")] = {"type": short(p.get("Type")), "nullable": p.get("Nullable") != "false"}
                    todo.append(element_type(p.get("Type")))
                elif p.tag == EDM + "NavigationProperty":
                    entry["navigation"].append(p.get("Name"))
        # Derived types a property of this type may carry (@odata.type), e.g. place → room.
        out[name] = entry
    for name, entry in out.items():
        if entry["kind"] != "enum":
            entry["derived"] = sorted(n for n, e in out.items() if e.get("base") == name)
    return {"source": "microsoftgraph/msgraph-metadata clean_v10_metadata/cleanMetadata.xml (commit f54f11b6)",
            "generated_by": "bin/extract_graph_schema.py", "types": dict(sorted(out.items()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metadata", type=Path, default=DEFAULT_METADATA)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if not args.metadata.exists():
        print(f"metadata not found: {args.metadata}", file=sys.stderr)
        return 2
    data = extract(args.metadata)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"{len(data['types'])} types → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
