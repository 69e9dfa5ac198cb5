"""Read an Ansible inventory the way a play sees it (groups, templated variables), in-process.

The orchestrator uses this for the service table, approvers and policy, so that the inventory is
the one place an operator declares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from hospops.errors import UserError
from hospops.paths import default_inventory


@dataclass
class Inventory:
    path: Path
    _cache: dict[str, "HostVars"] = field(default_factory=dict, repr=False)

    @cached_property
    def _ansible(self):
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.manager import VariableManager

        from hospops._collection import ensure_collection_finder

        ensure_collection_finder()

        if not self.path.exists():
            raise UserError(f"inventory {self.path} does not exist", "pass -i PATH or set HOSPOPS_INVENTORY")
        loader = DataLoader()
        inv = InventoryManager(loader=loader, sources=[str(self.path)])
        return loader, inv, VariableManager(loader=loader, inventory=inv)

    @property
    def groups(self) -> dict[str, list[str]]:
        _, inv, _ = self._ansible
        return {name: sorted(h.name for h in g.get_hosts()) for name, g in inv.groups.items()}

    def hosts(self, pattern: str = "all") -> list[str]:
        _, inv, _ = self._ansible
        return [h.name for h in inv.get_hosts(pattern)]

    def host_vars(self, host: str) -> "HostVars":
        """One host's variables, templated on access (a variable that cannot be templated for this
        host, such as an app password on the gateway, only fails when it is asked for)."""
        if host not in self._cache:
            loader, inv, vm = self._ansible
            h = inv.get_host(host)
            if h is None:
                raise UserError(f"host {host!r} is not in inventory {self.path}",
                                "check the name with `ansible-inventory -i INVENTORY --graph`")
            self._cache[host] = HostVars(loader, vm.get_vars(host=h, include_hostvars=False))
        return self._cache[host]

    def var(self, name: str, default: Any = None, host: str | None = None) -> Any:
        """A variable as the first host (or the named host) sees it; group_vars/all land here."""
        hosts = [host] if host else self.hosts()
        if not hosts:
            return default
        return self.host_vars(hosts[0]).get(name, default)


class HostVars:
    """A read-only mapping of one host's variables that templates each value when it is read."""

    def __init__(self, loader, raw: dict[str, Any]) -> None:
        from ansible.template import Templar

        self._raw = raw
        self._templar = Templar(loader=loader, variables=raw)
        self._done: dict[str, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._raw

    def __getitem__(self, name: str) -> Any:
        if name not in self._done:
            if name not in self._raw:
                raise KeyError(name)
            self._done[name] = _plain(self._templar.template(self._raw[name]))
        return self._done[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._raw else default


def _plain(value: Any) -> Any:
    """Strip Ansible's tagged types so values compare and serialise as plain Python."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def load(path: str | Path | None = None) -> Inventory:
    return Inventory(Path(path) if path else default_inventory())
