"""What the lab tests share: reading a lab service's JSON answer and running hospops as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def get_json(url: str, timeout: float = 3) -> tuple[int, dict]:
    """(HTTP status, JSON body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def hospops(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hospops", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
