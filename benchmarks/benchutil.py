"""What every benchmark script shares: the commit measured and the JSON result it prints and saves."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def commit() -> str:
    """Short hash of the checked-out commit, read at the start (others may commit while a run goes on)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()


def emit(result: dict, json_path: Path | None = None) -> int:
    """Print ``result`` as JSON and also write it to ``json_path`` when given; returns the exit code 0."""
    text = json.dumps(result, indent=1)
    print(text)
    if json_path:
        Path(json_path).write_text(text)
    return 0
