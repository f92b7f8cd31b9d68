"""Write the API's OpenAPI document (the front end's contract) as JSON.

``python -m modalchorus.server.openapi web/openapi.json`` regenerates the copy the front
end's types are generated from (``npm run gen:api`` in ``web/``); a test checks it is current.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from modalchorus.server.app import create_app
from modalchorus.store import Workspace


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document (built over a throwaway empty workspace)."""
    with tempfile.TemporaryDirectory(prefix="modalchorus-openapi-") as tmp:
        Workspace.create(Path(tmp) / "ws")
        return create_app(Path(tmp) / "ws", static_dir=None).openapi()


def dumps(document: dict[str, Any]) -> str:
    """Stable JSON text of a document (sorted keys, 2-space indent, final newline)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """Write the document to ``argv[0]`` (or stdout)."""
    text = dumps(openapi_document())
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
