"""Import the collection's private module_utils from the orchestrator (one home for shared code).

The canonical approval payload and its verification live in the collection
(``plugins/module_utils/_approval.py``) because the ``fuhosp.ops.change_gate`` action plugin needs
them on any control node; hospops imports the same file through the collection path.

The import goes through Ansible's collection finder (installed here if nothing installed it yet,
with this repository's collections first): importing ``ansible_collections`` as a plain namespace
package and installing the finder later (``hospops.inventory`` does) leaves a mix that breaks later
imports of the collection's plugins in the same process.
"""

from __future__ import annotations

import sys
from types import ModuleType

from hospops.paths import COLLECTIONS_PATH


def ensure_collection_finder() -> None:
    path = str(COLLECTIONS_PATH)
    if path not in sys.path:
        sys.path.append(path)
    if not any(type(f).__name__ == "_AnsibleCollectionFinder" for f in sys.meta_path):
        from ansible.plugins.loader import init_plugin_loader

        init_plugin_loader([path])


def approval() -> ModuleType:
    """The ``_approval`` module_util of fuhosp.ops."""
    ensure_collection_finder()
    from ansible_collections.fuhosp.ops.plugins.module_utils import _approval

    return _approval
