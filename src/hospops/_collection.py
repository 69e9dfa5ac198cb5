"""Import the collection's private module_utils from the orchestrator (one home for shared code).

The canonical approval payload and its verification live in the collection
(``plugins/module_utils/_approval.py``) because the ``fuhosp.ops.change_gate`` action plugin needs
them on any control node; hospops imports the same file through the collection path.
"""

from __future__ import annotations

import sys
from types import ModuleType

from hospops.paths import COLLECTIONS_PATH


def approval() -> ModuleType:
    """The ``_approval`` module_util of fuhosp.ops."""
    path = str(COLLECTIONS_PATH)
    if path not in sys.path:
        sys.path.append(path)
    from ansible_collections.fuhosp.ops.plugins.module_utils import _approval

    return _approval
