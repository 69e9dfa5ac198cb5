"""ih: the internet hospital platform; payments (扫码付 scan / 当面付 face) are its L1 function.

v2 (schema 2) records ``channel_ref``, the payment channel's reference; v1 code never touches it, so
v1 keeps working on a v2 schema during a rolling upgrade.
"""

from __future__ import annotations

import random

from ..web import HttpError, Request, Response, Router
from .base import Service, iso, want_bool, want_int, want_str

METHODS = ("scan", "face")
METHOD_NAMES = {"scan": "扫码付", "face": "当面付"}


class InternetHospital(Service):
    name = "ih"
    main_table = "ih_payments"

    def register(self, router: Router) -> None:
        router.add("POST", "/api/payments", self.create_payment)
        router.add("GET", r"/api/payments/(?P<id>[^/]+)", self.get_payment)
        self.app.counters.add("payments_recorded_total", 0)  # listed in /metrics from the start

    def create_payment(self, req: Request) -> Response:
        body = req.json()
        amount = want_int(body, "amount_fen", low=1, high=100_000_000)
        method = want_str(body, "method", choices=METHODS)
        order_ref = want_str(body, "order_ref", max_len=64)
        probe = want_bool(body, "probe")
        v2 = self.app.release.has(2)
        channel_ref = None
        if v2:
            channel_ref = body.get("channel_ref") or f"{'WXQR' if method == 'scan' else 'POSF'}-{order_ref}"
            if not isinstance(channel_ref, str) or len(channel_ref) > 80:
                raise HttpError(400, "'channel_ref' must be a string of at most 80 characters")
        detail = f"{METHOD_NAMES[method]} amount_fen={amount} order_ref={order_ref} probe={str(probe).lower()}"
        req.log_detail = "payment " + detail
        self.app.check_fault("payment")
        patient = req.patient
        with self.app.transaction() as cur:
            if v2:
                cur.execute(
                    "INSERT INTO ih_payments (order_ref, amount_fen, method, probe, patient_mrn, node,"
                    " channel_ref) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (order_ref, amount, method, probe, patient.mrn, self.app.config.node, channel_ref))
            else:
                cur.execute(
                    "INSERT INTO ih_payments (order_ref, amount_fen, method, probe, patient_mrn, node)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (order_ref, amount, method, probe, patient.mrn, self.app.config.node))
            payment_id = cur.fetchone()[0]
        # The transaction is committed here: only now is the payment acknowledged.
        self.app.counters.add("payments_recorded_total")
        req.log_detail = f"payment id={payment_id} {detail}"
        answer = {"id": payment_id, "status": "recorded", "order_ref": order_ref, "amount_fen": amount,
                  "method": method, "probe": probe}
        if v2:
            answer["channel_ref"] = channel_ref
        return Response(201, answer)

    def get_payment(self, req: Request) -> Response:
        raw = req.params["id"]
        if not raw.isdigit() or len(raw) > 18:
            raise HttpError(400, "payment id must be a positive integer")
        self.app.check_fault("payment lookup")
        columns = "id, order_ref, amount_fen, method, status, probe, node, created_at"
        if self.app.release.has(2):
            columns += ", channel_ref"
        with self.app.transaction() as cur:
            cur.execute(f"SELECT {columns} FROM ih_payments WHERE id = %s", (int(raw),))  # noqa: S608
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        if row is None:
            raise HttpError(404, f"no payment {raw}")
        record = dict(zip(names, row))
        record["created_at"] = iso(record["created_at"])
        req.log_detail = f"payment lookup id={raw}"
        return Response(200, record)

    def activity(self, rng: random.Random) -> str:
        method = rng.choice(METHODS)
        yuan = rng.randrange(500, 80000) / 100
        return f"{METHOD_NAMES[method]} 支付成功 金额 {yuan:.2f} 元 订单 IH{rng.randrange(10**10):010d}"
