"""Export the JSON Schema of every contract to `jsonschema/` (committed).

`python -m closeloop.contracts.schema_export` rewrites the files; a test fails when they differ from
what the models produce, so code and published schema cannot drift apart silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from closeloop.contracts.codec import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "jsonschema"


def schema_file_name(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}.schema.json"


def render_schemas() -> dict[str, str]:
    rendered: dict[str, str] = {}
    for event_type, cls in sorted(EVENT_TYPES.items()):
        schema: dict[str, Any] = cls.model_json_schema(mode="validation")
        schema["$id"] = f"https://closeloop.dev/schemas/{schema_file_name(event_type, cls.SCHEMA_VERSION)}"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        rendered[schema_file_name(event_type, cls.SCHEMA_VERSION)] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in render_schemas().items():
        (SCHEMA_DIR / name).write_text(text)
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
