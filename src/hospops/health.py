"""The health table: each service object read from the real services, directly and through the gateway."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hospops.inventory import Inventory


@dataclass
class HealthRow:
    service: str
    host: str
    path: str  # "direct" or "gateway"
    status: str  # "ok" or what failed
    latency_ms: float
    version: str = ""


def _get(url: str, timeout: float) -> tuple[str, float, str]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - inventory URLs
            body = json.loads(resp.read() or b"{}")
            status = "ok" if resp.status == 200 and body.get("status") == "ok" else f"HTTP {resp.status}"
            return status, (time.monotonic() - start) * 1000, str(body.get("version", ""))
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}", (time.monotonic() - start) * 1000, ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"down ({reason})", (time.monotonic() - start) * 1000, ""


def check(inv: Inventory, timeout: float = 3.0) -> list[HealthRow]:
    services = inv.var("hospops_services", {})
    gateway = inv.var("hospops_gateway_url", "")
    targets: list[tuple[str, str, str, str]] = []
    for name, svc in services.items():
        for host in inv.groups.get(svc["group"], []):
            url = inv.host_vars(host).get("hospops_app_url")
            if url:
                targets.append((name, host, "direct", url.rstrip("/") + "/health"))
        if gateway:
            targets.append((name, "gateway", "gateway", gateway.rstrip("/") + svc["gateway_path"] + "health"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: _get(t[3], timeout), targets))
    return [HealthRow(n, h, p, s, lat, v) for (n, h, p, _), (s, lat, v) in zip(targets, results)]


def render(rows: list[HealthRow]) -> str:
    head = ("SERVICE", "HOST", "PATH", "STATUS", "LATENCY", "VERSION")
    body = [(r.service, r.host, r.path, r.status, f"{r.latency_ms:.0f} ms", r.version) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
    return "\n".join(lines)
