#!/usr/bin/env bash
# The main job on the lab, end to end: a payment fault on ih1 is detected, the hospital is told and
# approves, the node is restarted through the gate and verified with a real payment, the incident
# resolves, the logs go to the developers redacted, and the audit chain proves every step.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${HOSPOPS_HOME:-$HOME/.local/state/hospops}/lab
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

step "1. The fault: the internet hospital platform's app on ih1 stops"
podman exec hospops-ih1 systemctl stop hospapp-ih
hospops lab status || true

step "2. The probe opens an L1 incident (payments fail on ih1) and tells the hospital"
hospops watch --once || true
INC=$(hospops incident list --json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["service"] == "ih" and r["status"] not in ("resolved", "closed")]
print(rows[-1]["id"])')
hospops incident show "$INC"

step "3. The on-call engineer asks for a restart; a hospital approver signs it (Ed25519)"
CHANGE=$(hospops change request restart --target ih1 --incident "$INC" --level L1 \
           --reason "ih1 stopped: payments on ih1 fail; restart the service" 2>&1 | grep -o 'CHG-[0-9]*-[0-9a-f]*' | head -1)
hospops change approve "$CHANGE" --as zhang-it --key "$LAB/approvers/zhang-it.key"

step "4. Restart through the change gate, verified by a real test payment"
hospops restart ih --change "$CHANGE"

step "5. The probe sees ih1 healthy again; the incident resolves"
for _ in 1 2 3 4; do
  out=$(hospops watch --once || true); echo "$out" | tail -n 3
  case "$out" in *resolved*) break ;; esac
done
hospops incident show "$INC" | head -n 20

step "6. The fault's logs go to the developers, patient data redacted on the hosts"
hospops logs collect --incident "$INC"

step "7. What the hospital and the developers received (the lab's mail catcher)"
ls "$LAB/mail"/*.json 2>/dev/null | tail -n 6 | while read -r m; do field '["subject"]' <"$m"; done

step "8. The audit chain is intact"
hospops audit verify
