"""hospops keys new NAME: make an approver's Ed25519 key pair and print the line for the inventory."""

from __future__ import annotations

from pathlib import Path

from hospops import keys


def register(sub) -> None:
    p = sub.add_parser("keys", help="approver signing keys")
    s = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    n = s.add_parser("new", help="create NAME.key (0600) and NAME.pub if absent; print the public key line")
    n.add_argument("name", help="approver name as declared in hospops_approvers, e.g. zhang-it")
    n.add_argument("--dir", type=Path, help="where to keep the pair (default: $HOSPOPS_HOME/keys)")
    n.set_defaults(func=_new)


def _new(args) -> int:
    directory = args.dir or keys.key_dir()
    existed = (directory / f"{args.name}.key").exists()
    pub = keys.ensure_keypair(args.name, directory)
    print(pub.read_text().strip())
    note = "kept the existing key" if existed else "created"
    print(f"# {note}: {directory / (args.name + '.key')} (private, 0600; never share it)\n"
          f"# paste the line above as public_key of {args.name} in group_vars/all/approvers.yml", flush=True)
    return 0
