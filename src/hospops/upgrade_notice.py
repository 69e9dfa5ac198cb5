"""What the hospital is told when an upgrade ends (7.7.2 通知及告知, 5.5): what happened, what it
means for the hospital, what the hospital should do, what happens next; in Chinese and English.

Events: ``upgrade.done`` (upgraded, or already on the new version), ``upgrade.rolled_back`` and
``upgrade.stopped`` (stopped at a safe point when the window closes, or failed part-way).
Templates: ``templates/notify/<lang>/upgrade_*.md.j2``.
"""

from __future__ import annotations

from typing import Any

EVENTS = {"upgraded": "upgrade.done", "already_current": "upgrade.done", "rolled_back": "upgrade.rolled_back",
          "stopped_window": "upgrade.stopped", "failed": "upgrade.stopped"}


def notice(out, plan: dict[str, Any], inv=None) -> tuple[str, dict[str, Any]] | None:
    """(event, context) for ``changes.notify_everyone``; None when there is nothing to tell (a
    check-mode run changed nothing)."""
    event = EVENTS.get(out.outcome)
    if event is None:
        return None
    title = _service_title(inv, out.service)
    zh, en = title.get("zh") or out.service, title.get("en") or out.service
    texts = _TEXTS[out.outcome](out, plan, zh, en)
    return event, {
        "service": out.service, "service_title": title, "outcome": out.outcome,
        "from_version": out.from_version, "to_version": out.to_version, "version": out.version,
        "consistent": out.consistent, "nodes": {h: {"before": n.get("before"), "after": n.get("after")}
                                                for h, n in sorted(out.nodes.items())},
        "failure": out.failure, "rollback_seconds": out.rollback_seconds, "window_end": out.window_end,
        "run_id": out.run_id, **texts}


def _service_title(inv, service: str) -> dict[str, str]:
    try:
        svc = (inv.var("hospops_services", None) or {}).get(service) if inv is not None else None
    except Exception:  # noqa: BLE001 - a title is a nicety; the notice goes out without it
        svc = None
    title = (svc or {}).get("title") if isinstance(svc, dict) else None
    return title if isinstance(title, dict) else {"zh": service, "en": service}


def _state(out) -> tuple[str, str]:
    if out.consistent and out.version:
        return f"所有节点均运行 {out.version}", f"every node runs {out.version}"
    nodes = "、".join(f"{h} {n.get('after') or '?'}" for h, n in sorted(out.nodes.items()))
    if nodes:
        return f"各节点版本不一致：{nodes}", "node versions differ: " + nodes.replace("、", ", ")
    return "各节点版本待核实", "node versions still to be checked"


def _checks(plan: dict[str, Any]) -> tuple[str, str]:
    if (plan.get("health_checks") or {}).get("payment_probe"):
        return "健康检查和测试支付均已通过", "health checks and a test payment passed"
    return "健康检查已通过", "health checks passed"


def _done(out, plan, zh: str, en: str) -> dict[str, Any]:
    checks_zh, checks_en = _checks(plan)
    hosts = ", ".join(sorted(out.nodes)) or out.service
    if out.outcome == "already_current":
        summary = {"zh": f"{zh}（{out.service}）已在运行 {out.to_version}，本次无需变更（节点：{hosts}）。",
                   "en": f"{en} ({out.service}) already runs {out.to_version}; nothing needed changing ({hosts})."}
    else:
        summary = {"zh": f"按已批准的升级计划，{zh}（{out.service}）已从 {out.from_version} 升级到 "
                         f"{out.to_version}，节点：{hosts}。",
                   "en": f"Under the approved upgrade plan, {en} ({out.service}) went from {out.from_version} "
                         f"to {out.to_version} on {hosts}."}
    return {
        "title": {"zh": f"{zh} 已升级到 {out.to_version}", "en": f"{en} upgraded to {out.to_version}"},
        "summary": summary,
        "impact": {"zh": f"服务已在新版本上正常运行，{checks_zh}。",
                   "en": f"The service runs the new version; {checks_en}."},
        "advice": {"zh": "请留意升级计划中说明的变化；如发现异常，请直接回复或致电值班工程师。",
                   "en": "Look out for the changes the plan describes; if anything looks wrong, reply or call the "
                         "on-call engineer."},
        "next": {"zh": "我方在接下来 24 小时内加强监测；升级记录已写入审计日志。",
                 "en": "We watch the service closely for the next 24 hours; the upgrade is in the audit log."},
    }


def _rolled_back(out, plan, zh: str, en: str) -> dict[str, Any]:
    version = out.version or out.from_version
    took_zh = f"（用时 {out.rollback_seconds:.0f} 秒）" if out.rollback_seconds is not None else ""
    took_en = f" in {out.rollback_seconds:.0f} s" if out.rollback_seconds is not None else ""
    why = out.failure or "a check failed"
    impact_zh, impact_en = f"服务仍运行原版本 {version}，功能与升级前相同。", \
        f"The service runs the previous version {version}, as before the upgrade."
    if (plan.get("migrations") or {}).get("backward") == "restore_point":
        data = (plan.get("rollback") or {}).get("data") or ""
        impact_zh += f"数据库已恢复到升级前的还原点，升级期间写入的数据未保留。{data}"
        impact_en += f" The database went back to the restore point taken before the upgrade: data written " \
                     f"during the upgrade was not kept. {data}"
    return {
        "title": {"zh": f"{zh} 升级未成功，已回退到 {version}", "en": f"{en} upgrade rolled back to {version}"},
        "summary": {"zh": f"升级到 {out.to_version} 时出现问题：{why}。已按回退计划回退到 {version}{took_zh}。",
                    "en": f"While upgrading to {out.to_version}: {why}. It was rolled back to {version} under the "
                          f"rollback plan{took_en}."},
        "impact": {"zh": impact_zh.strip(), "en": impact_en.strip()},
        "advice": {"zh": "暂无需要院方操作的事项；如发现异常，请联系值班工程师。",
                   "en": "Nothing for now; if anything looks wrong, call the on-call engineer."},
        "next": {"zh": "我方分析失败原因并修正后，将提交新的升级计划，另约升级时间，请院方审批。",
                 "en": "We find and fix the cause, then submit a new upgrade plan with a new window for your "
                       "approval."},
    }


def _stopped(out, plan, zh: str, en: str) -> dict[str, Any]:
    state_zh, state_en = _state(out)
    usable_zh = "服务可正常使用。" if out.consistent else "服务仍可使用，但各节点版本不一致，我方正在尽快处理。"
    usable_en = "The service works normally." if out.consistent else \
        "The service still works, but its nodes run different versions; we are dealing with it now."
    if out.outcome == "stopped_window":
        title = {"zh": f"{zh} 升级已在安全点暂停", "en": f"{en} upgrade stopped at a safe point"}
        summary = {"zh": f"升级窗口将于 {out.window_end} 结束，升级到 {out.to_version} 在安全点停止：{state_zh}。",
                   "en": f"The upgrade window closes at {out.window_end}; the upgrade to {out.to_version} stopped "
                         f"at a safe point: {state_en}."}
        advice = {"zh": "暂无需要院方操作的事项；我方申请新的升级窗口时，请予审批。",
                  "en": "Nothing for now; please approve the new window when we ask for it."}
        nxt = {"zh": "我方将申请新的升级窗口完成升级。", "en": "We will ask for a new window to finish the upgrade."}
    else:
        title = {"zh": f"{zh} 升级失败", "en": f"{en} upgrade failed"}
        summary = {"zh": f"升级到 {out.to_version} 失败：{out.failure or '原因待查'}；{state_zh}。",
                   "en": f"The upgrade to {out.to_version} failed: {out.failure or 'cause being checked'}; "
                         f"{state_en}."}
        advice = {"zh": "如发现服务异常，请立即联系值班工程师。",
                  "en": "If the service misbehaves, call the on-call engineer at once."}
        nxt = {"zh": "值班工程师正在核查各节点的版本和健康状况，必要时按回退计划回退，并将结果告知院方。",
               "en": "The on-call engineer is checking every node's version and health, will roll back under the "
                     "plan if needed, and will tell you the result."}
    return {"title": title, "summary": summary, "impact": {"zh": usable_zh, "en": usable_en},
            "advice": advice, "next": nxt}


_TEXTS = {"upgraded": _done, "already_current": _done, "rolled_back": _rolled_back,
          "stopped_window": _stopped, "failed": _stopped}
