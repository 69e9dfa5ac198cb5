"""The health table: each service object read from the real services, directly and through the
gateway, and the database; the same checks `hospops watch` runs (hospops.probes), shown as a table."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hospops.inventory import Inventory
from hospops.probes import ProbePlan, check_db, check_health


@dataclass
class HealthRow:
    service: str
    host: str
    path: str  # "direct", "gateway" or "db"
    status: str  # "ok" or what failed
    latency_ms: float
    version: str = ""


def check(inv: Inventory, timeout: float = 3.0) -> list[HealthRow]:
    plan = ProbePlan.from_inventory(inv)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda t: check_health(t, timeout), plan.health))
    if plan.db:
        results.append(check_db(plan.db))
    return [HealthRow(r.service or "database", r.host, r.path if r.kind != "db" else "db",
                      "ok" if r.ok else (r.error or "down"), r.latency_ms, r.version) for r in results]


def render(rows: list[HealthRow]) -> str:
    head = ("SERVICE", "HOST", "PATH", "STATUS", "LATENCY", "VERSION")
    body = [(r.service, r.host, r.path, r.status, f"{r.latency_ms:.0f} ms", r.version) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body])
