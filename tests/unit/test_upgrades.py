"""Upgrades through the orchestrator: rehearsal summaries from real job-event files, attachments,
approval held until a rehearsal succeeds, the outcome of a run (each outcome), what the hospital is
told, the status verdict from real HTTP nodes, and the plan draft. Only run_playbook is replaced."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from hospops import audit, changes, rehearsal, upgrade_plan, upgrades
from hospops.errors import UserError
from hospops.paths import hospops_home
from hospops.runner import RunResult

STATS_UPGRADED = {
    "service": "ih", "from_version": "1.0.0", "to_version": "2.0.0", "outcome": "upgraded", "version": "2.0.0",
    "consistent": True, "nodes": {"h1": {"before": "1.0.0", "after": "2.0.0", "switched": True, "seconds": 11.2},
                                  "h2": {"before": "1.0.0", "after": "2.0.0", "switched": True, "seconds": 9.8}},
    "migration": {"forward": {"from": 1, "to": 2}, "backward": None}, "restore_point": {"name": "x", "lsn": "0/1"},
    "backup": {"label": "20261125F", "age_hours": 3.0, "taken": False}, "failure": None, "rollback_seconds": None,
    "check_mode": False}


def _event(kind: str, host: str | None = None, task: str | None = None, res: dict | None = None, **data) -> dict:
    event_data = {**data}
    if host:
        event_data.update(host=host, task=task, res=res or {})
    return {"uuid": str(uuid.uuid4()), "event": kind, "event_data": event_data}


def _stats_event(stats: dict | None) -> dict:
    return _event("playbook_on_stats", artifact_data={"app_upgrade": stats} if stats else {})


def _write_events(folder: Path, events: list[dict]) -> None:
    (folder / "job_events").mkdir(parents=True, exist_ok=True)
    for n, event in enumerate(events, start=1):
        (folder / "job_events" / f"{n}-{event['uuid']}.json").write_text(json.dumps(event))


REHEARSAL_OK = [
    _event("playbook_on_start"),
    _event("runner_on_ok", "h1", "Verify the hospital's approval for this change", {"changed": False}),
    _event("runner_on_ok", "h1", "Unpack release 2.0.0",
           {"changed": True, "diff": {"before": {"path": "/opt/hospapp/ih/releases/2.0.0", "state": "absent"},
                                      "after": {"path": "/opt/hospapp/ih/releases/2.0.0", "state": "directory"}}}),
    _event("runner_on_ok", "h1", "Point current at the new release",
           {"changed": True, "diff": [{"before_header": "/opt/hospapp/ih/current",
                                       "after_header": "/opt/hospapp/ih/current",
                                       "before": "releases/1.0.0\n", "after": "releases/2.0.0\n"}]}),
    _event("runner_on_skipped", "h1", "Roll back the node"),
    _event("runner_on_ok", "h2", "Write the service config",
           {"changed": True, "results": [{"changed": True, "diff": {"prepared": "--- a\n+++ b\n-x\n+y"}},
                                         {"changed": False}]}),
    _event("runner_on_ok", "h2", "Read the running version", {"changed": False}),
    _stats_event({**STATS_UPGRADED, "outcome": "rehearsed", "version": "1.0.0", "check_mode": True,
                  "nodes": {}}),
]
REHEARSAL_FAILED = [
    _event("runner_on_ok", "h1", "Unpack release 2.0.0", {"changed": True}),
    _event("runner_on_failed", "h1", "Check the release checksum", {"msg": "sha256 mismatch for hospapp-ih-2.0.0"}),
    _event("runner_on_failed", "h2", "An ignored probe", {"msg": "ignored"}, ignore_errors=True),
    _stats_event(None),
]


class FakeRunner:
    """Stands in for hospops.runner.run_playbook: writes the given job events as a run would."""

    def __init__(self, events: list[dict], ok: bool = True) -> None:
        self.events, self.ok, self.calls = events, ok, []
        self.name = "run-test" if ok else "run-failed"  # each run has a directory of its own

    def __call__(self, playbook, **kw) -> RunResult:
        self.calls.append((playbook, kw))
        run_id = f"{self.name}-{len(self.calls)}"
        artifacts = hospops_home() / "runs" / run_id / "artifacts" / run_id
        _write_events(artifacts, self.events)
        return RunResult(run_id=run_id, status="successful" if self.ok else "failed", rc=0 if self.ok else 2,
                         failed_hosts=[] if self.ok else ["h1"], artifacts_dir=artifacts)


@pytest.fixture()
def filed(upgrade_world, store):
    policy = upgrade_world.lab.policy()
    change = upgrades.request(store, policy, policy.inventory, upgrade_world.write(upgrade_world.plan()),
                              requester="dave")
    return change, policy


# -- rehearsal summaries -----------------------------------------------------------------------
def test_summary_lists_what_would_change_per_host_with_short_diffs(tmp_path):
    _write_events(tmp_path, REHEARSAL_OK)
    result = RunResult(run_id="run-1", status="successful", rc=0, artifacts_dir=tmp_path)
    summary = rehearsal.summarise(result, stats_key="app_upgrade", playbook="upgrade.yml")
    assert summary["ok"] and summary["failures"] == [] and summary["stats"]["outcome"] == "rehearsed"
    h1, h2 = summary["hosts"]["h1"], summary["hosts"]["h2"]
    assert [c["task"] for c in h1["would_change"]] == ["Unpack release 2.0.0", "Point current at the new release"]
    assert h1["ok"] == 3 and h1["skipped"] == 1
    assert '- "state": "absent"' in h1["would_change"][0]["diff"]
    assert '+ "state": "directory"' in h1["would_change"][0]["diff"]
    link = h1["would_change"][1]["diff"].splitlines()
    assert link[:2] == ["--- /opt/hospapp/ih/current", "+++ /opt/hospapp/ih/current"]
    assert "-releases/1.0.0" in link and "+releases/2.0.0" in link
    assert h2["would_change"] == [{"task": "Write the service config", "diff": "--- a\n+++ b\n-x\n+y"}]
    text = "\n".join(rehearsal.render(summary))
    assert "rehearsal ok: run run-1" in text and "h1: 2 task(s) would change" in text and "+releases/2.0.0" in text


def test_summary_of_a_failed_rehearsal_names_the_failure_and_caps_long_diffs(tmp_path):
    long_diff = {"before": "".join(f"line {n}\n" for n in range(200)), "after": ""}
    _write_events(tmp_path, [*REHEARSAL_FAILED,
                             _event("runner_on_ok", "h2", "Huge file", {"changed": True, "diff": long_diff})])
    result = RunResult(run_id="run-2", status="failed", rc=2, failed_hosts=["h1"], artifacts_dir=tmp_path)
    summary = rehearsal.summarise(result, stats_key="app_upgrade")
    assert not summary["ok"] and summary["stats"] is None
    assert summary["failures"] == [{"host": "h1", "task": "Check the release checksum",
                                    "msg": "sha256 mismatch for hospapp-ih-2.0.0"}]
    diff = summary["hosts"]["h2"]["would_change"][0]["diff"]
    assert len(diff.splitlines()) == rehearsal.MAX_DIFF_LINES + 1 and "more lines" in diff
    assert any(line.startswith("  FAILED h1: Check the release checksum") for line in rehearsal.render(summary))


# -- rehearse, attach, approve -----------------------------------------------------------------
def test_approval_waits_for_a_successful_rehearsal(upgrade_world, store, filed, monkeypatch):
    change, policy = filed
    lab = upgrade_world.lab
    with pytest.raises(UserError, match=f"upgrade {change.id} has not been rehearsed") as refused:
        changes.decide(store, policy, change.id, approver="alice", key=lab.key("alice"), decision="approve")
    assert f"hospops upgrade rehearse {change.id}" in refused.value.fix

    failing = FakeRunner(REHEARSAL_FAILED, ok=False)
    monkeypatch.setattr("hospops.runner.run_playbook", failing)
    assert upgrades.rehearse(store, policy.inventory, change.id, actor="dave")["ok"] is False
    with pytest.raises(UserError, match="has not been rehearsed successfully"):
        changes.decide(store, policy, change.id, approver="alice", key=lab.key("alice"), decision="approve")

    good = FakeRunner(REHEARSAL_OK)
    monkeypatch.setattr("hospops.runner.run_playbook", good)
    summary = upgrades.rehearse(store, policy.inventory, change.id, actor="dave")
    assert summary["ok"] and summary["request_digest"] == change.digest
    playbook, kw = good.calls[0]
    assert playbook == "upgrade.yml" and kw["change_id"] == change.id
    assert kw["check"] is True and kw["diff"] is True and kw["rehearsal"] is True
    sent = kw["extravars"]["upgrade_plan"]
    assert sent["rollback"]["restore_point"] == upgrade_plan.restore_point_name(change.id)
    assert sent["artifacts"] == change.request["plan"]["artifacts"]

    one = changes.decide(store, policy, change.id, approver="alice", key=lab.key("alice"), decision="approve")
    assert one.state == "pending"  # upgrades need two approvals, one of them hospital-it
    two = changes.decide(store, policy, change.id, approver="bob", key=lab.key("bob"), decision="approve")
    assert two.state == "approved" and two.digest == change.digest  # attachments do not touch the request

    kept = changes.attachments(store, change.id, kind="rehearsal")
    assert [a["body"]["ok"] for a in kept] == [False, True]
    attach_records = [json.loads(r["data"]) for r in store.query(
        "SELECT data FROM audit WHERE kind = 'change.attach' ORDER BY seq")]
    assert [r["sha256"] for r in attach_records] == [a["sha256"] for a in kept]
    assert audit.verify(store).ok


def test_a_denial_needs_no_rehearsal(upgrade_world, store, filed):
    change, policy = filed
    denied = changes.decide(store, policy, change.id, approver="alice", key=upgrade_world.lab.key("alice"),
                            decision="deny", comment="not during the flu season")
    assert denied.state == "denied"


def test_rehearse_refuses_a_plan_whose_tarball_changed_since_it_was_filed(upgrade_world, store, filed, monkeypatch):
    change, policy = filed
    runner = FakeRunner(REHEARSAL_OK)
    monkeypatch.setattr("hospops.runner.run_playbook", runner)
    (upgrade_world.releases / "ih" / "hospapp-ih-2.0.0.tar.gz").write_bytes(b"replaced")
    with pytest.raises(UserError, match="no longer holds: artifacts\\[0\\].sha256"):
        upgrades.rehearse(store, policy.inventory, change.id, actor="dave")
    assert runner.calls == [] and changes.attachments(store, change.id) == []


def test_change_show_reads_the_plan_and_the_latest_rehearsal(upgrade_world, filed, store_url, monkeypatch, capsys):
    from hospops.cli import main

    change, policy = filed
    monkeypatch.setenv("HOSPOPS_STORE_URL", store_url)
    monkeypatch.setattr("hospops.runner.run_playbook", FakeRunner(REHEARSAL_OK))
    assert main(["upgrade", "rehearse", change.id, "-i", str(upgrade_world.inventory), "--as", "dave"]) == 0
    assert "h1: 2 task(s) would change" in capsys.readouterr().out
    assert main(["change", "show", change.id]) == 0
    out = capsys.readouterr().out
    for words in ("service:   ih  1.0.0 -> 2.0.0", f"sha256 {upgrade_world.sha['2.0.0']}",
                  "forward, schema 1 -> 2; backward: the new release's down migrations",
                  "checks:    GET /health within 40 s; a test payment, read back", "downtime:  none (rolling)",
                  "rollback when: health_check_failed, migration_failed, window_closing",
                  "1. switch nodes back to 1.0.0 one at a time", "restore point: auto",
                  "rehearsal ok: run run-test-1", "~ Point current at the new release", "+releases/2.0.0"):
        assert words in out, words
    assert main(["change", "show", change.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["plan"]["service"] == "ih" and shown["attachments"][0]["body"]["ok"] is True

    monkeypatch.setattr("hospops.runner.run_playbook", FakeRunner(REHEARSAL_FAILED, ok=False))
    assert main(["upgrade", "rehearse", change.id, "-i", str(upgrade_world.inventory), "--as", "dave"]) == 1


# -- outcomes ----------------------------------------------------------------------------------
def _outcome(stats, failures=(), status="successful"):
    plan = {"service": "ih", "from_version": "1.0.0", "to_version": "2.0.0",
            "window": {"start": "2026-11-26T01:00:00+08:00", "end": "2026-11-26T05:00:00+08:00"}}
    result = RunResult(run_id="run-9", status=status, rc=0)
    return upgrades.outcome_of(stats, plan, result, list(failures))


@pytest.mark.parametrize("stats, headline, on_target", [
    (STATS_UPGRADED, "ih upgraded 1.0.0 -> 2.0.0 on h1, h2", True),
    ({**STATS_UPGRADED, "outcome": "already_current"}, "ih already runs 2.0.0 on h1, h2: nothing to do", True),
    ({**STATS_UPGRADED, "outcome": "rolled_back", "version": "1.0.0", "rollback_seconds": 42.4,
      "failure": "health check failed on h1: HTTP 500"},
     "ih ROLLED BACK to 1.0.0: health check failed on h1: HTTP 500; rollback took 42 s", False),
    ({**STATS_UPGRADED, "outcome": "stopped_window", "version": "1.0.0",
      "nodes": {"h1": {"before": "1.0.0", "after": "1.0.0", "switched": False}}},
     "ih stopped at a safe point: the window closes at 2026-11-26T05:00:00+08:00; all nodes on 1.0.0", False),
    ({**STATS_UPGRADED, "outcome": "failed", "version": None, "consistent": False, "failure": "migration failed",
      "nodes": {"h1": {"after": "2.0.0"}, "h2": {"after": "1.0.0"}}},
     "ih upgrade FAILED: migration failed; MIXED: h1 2.0.0, h2 1.0.0", False),
    ({**STATS_UPGRADED, "outcome": "rehearsed"}, "ih was only rehearsed (check mode): nothing changed", False),
    ({**STATS_UPGRADED, "consistent": False}, "ih upgraded 1.0.0 -> 2.0.0 on h1, h2", False),
])
def test_each_outcome_reads_as_one_clear_line(stats, headline, on_target):
    out = _outcome(stats)
    assert out.headline() == headline and out.on_target is on_target


def test_without_the_roles_stats_the_first_failure_is_the_reason():
    out = _outcome(None, failures=[("h1", "Take the restore point", "connection refused")], status="failed")
    assert out.outcome == "failed" and not out.reported and not out.on_target
    assert out.headline().startswith("ih upgrade FAILED: h1: Take the restore point: connection refused")
    assert _outcome({}, status="canceled").failure == "the run ended (canceled) before the upgrade role reported"
    assert "unknown outcome 'exploded'" in _outcome({**STATS_UPGRADED, "outcome": "exploded"}).failure


def test_node_lines_show_who_switched():
    lines = _outcome({**STATS_UPGRADED, "nodes": {"h1": {"before": "1.0.0", "after": "2.0.0", "switched": True,
                                                         "seconds": 11.24},
                                                  "h2": {"before": "1.0.0", "after": "1.0.0", "switched": False}}}
                     ).node_lines()
    assert lines == ["  h1         1.0.0 -> 2.0.0  switched in 11.2 s", "  h2         1.0.0  not switched"]


def test_flags_and_numbers_made_text_by_a_template_read_right():
    out = _outcome({**STATS_UPGRADED, "outcome": "rolled_back", "version": "1.0.0", "consistent": "False",
                    "rollback_seconds": "42.4", "nodes": {"h1": {"after": "1.0.0", "switched": "False"}}})
    assert out.consistent is False and out.rollback_seconds == 42.4
    assert out.node_lines() == ["  h1         1.0.0  not switched"]


def _run_events(stats):
    return [_event("runner_on_ok", "h1", "Switch h1", {"changed": True}),
            *([_event("runner_on_failed", "h1", "Check health of h1", {"msg": "HTTP 500"})]
              if stats and stats["outcome"] == "rolled_back" else []),
            _stats_event(stats)]


@pytest.mark.parametrize("stats, event, code, words", [
    (STATS_UPGRADED, "upgrade.done", 0, "[Upgraded] Internet hospital platform upgraded to 2.0.0"),
    ({**STATS_UPGRADED, "outcome": "rolled_back", "version": "1.0.0", "rollback_seconds": 30,
      "failure": "health check failed on h1: HTTP 500"}, "upgrade.rolled_back", 1,
     "**Rollback took**: 30 s"),
    ({**STATS_UPGRADED, "outcome": "stopped_window", "version": "1.0.0"}, "upgrade.stopped", 1,
     "stopped at a safe point: every node runs 1.0.0"),
    (None, "upgrade.stopped", 1, "upgrade failed"),
])
def test_run_records_announces_and_exits_by_outcome(upgrade_world, filed, store_url, monkeypatch, capsys,
                                                    stats, event, code, words):
    from hospops.cli import main
    from hospops.store import open_store

    change, _ = filed
    monkeypatch.setenv("HOSPOPS_STORE_URL", store_url)
    runner = FakeRunner(_run_events(stats), ok=stats is not None and stats["outcome"] == "upgraded")
    monkeypatch.setattr("hospops.runner.run_playbook", runner)
    assert main(["upgrade", "run", change.id, "-i", str(upgrade_world.inventory), "--as", "oncall"]) == code
    out = capsys.readouterr()
    playbook, kw = runner.calls[0]
    assert playbook == "upgrade.yml" and kw["change_id"] == change.id and not kw.get("check")
    assert kw["extravars"]["upgrade_plan"]["to_version"] == "2.0.0"
    outcome = (stats or {}).get("outcome", "failed")
    assert out.out.splitlines()[0].startswith({"upgraded": "ih upgraded 1.0.0 -> 2.0.0 on h1, h2",
                                               "rolled_back": "ih ROLLED BACK to 1.0.0: health check failed",
                                               "stopped_window": "ih stopped at a safe point: the window closes",
                                               "failed": "ih upgrade FAILED: the run ended (failed)"}[outcome])
    store = open_store(store_url)
    record = store.one("SELECT subject, data FROM audit WHERE kind = :k", {"k": f"upgrade.{outcome}"})
    assert record["subject"] == change.id and json.loads(record["data"])["run_id"] == runner.name + "-1"
    (message,) = upgrade_world.webhook.messages
    assert message["event"] == event and message["id"] == change.id and message["lang"] == "en"
    assert words in message["text"], message["text"]
    assert store.one("SELECT status FROM notifications WHERE event = :e", {"e": event})["status"] == "sent"
    store.close()


# -- where the service stands ------------------------------------------------------------------
def test_verdict():
    r = upgrades.NodeReading
    assert upgrades.verdict([r("h1", "2.0.0", True), r("h2", "2.0.0", True)]) == ("consistent at 2.0.0", True)
    assert upgrades.verdict([r("h1", "2.0.0", True), r("h2", "1.0.0", True)]) == ("MIXED: h1 2.0.0, h2 1.0.0", False)
    assert upgrades.verdict([r("h1", "2.0.0", True), r("h2", "", False, "HTTP 500")]) == (
        "UNHEALTHY: h2 (HTTP 500); the others at 2.0.0", False)
    assert upgrades.verdict([]) == ("no nodes", False)


def test_status_reads_the_real_nodes(upgrade_world, capsys):
    from hospops.cli import main

    argv = ["upgrade", "status", "ih", "-i", str(upgrade_world.inventory)]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ih: consistent at 1.0.0"
    upgrade_world.nodes["h1"].version = "2.0.0"
    assert main(argv) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "ih: MIXED: h1 2.0.0, h2 1.0.0"
    upgrade_world.nodes["h1"].version = "1.0.0"
    upgrade_world.nodes["h2"].healthy = False
    assert main([*argv, "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["verdict"] == "UNHEALTHY: h2 (HTTP 503 schema 1 < required 2); the others at 1.0.0" and not shown["ok"]


# -- the plan draft ----------------------------------------------------------------------------
def test_plan_draft_from_the_index_and_the_running_version_files_cleanly(upgrade_world, capsys):
    from hospops.cli import main
    from hospops.store import open_store

    path = upgrade_world.lab.root / "drafted.yml"
    inv = ["-i", str(upgrade_world.inventory)]
    assert main(["upgrade", "plan", "ih", "--to", "2.0.0", "-o", str(path), *inv]) == 0
    plan = upgrade_plan.load(path)
    assert (plan["from_version"], plan["to_version"]) == ("1.0.0", "2.0.0")
    assert plan["artifacts"] == [{"file": "ih/hospapp-ih-2.0.0.tar.gz", "sha256": upgrade_world.sha["2.0.0"]}]
    assert plan["migrations"] == {"forward": True, "schema_from": 1, "schema_to": 2, "backward": "down"}
    assert "payment_probe_failed" in plan["rollback"]["triggers"] and plan["health_checks"]["payment_probe"]
    assert upgrade_plan.problems(plan, upgrade_world.inv()) == []
    assert main(["upgrade", "plan", "ih", "--to", "2.0.0", "-o", str(path), *inv]) == 2  # never overwrites
    capsys.readouterr()
    assert main(["change", "request", "upgrade", str(path), *inv, "--as", "dave"]) == 0
    assert len(open_store().query("SELECT id FROM changes")) == 1


def test_plan_draft_needs_from_when_the_nodes_disagree(upgrade_world, capsys):
    from hospops.cli import main

    inv = ["-i", str(upgrade_world.inventory)]
    upgrade_world.nodes["h2"].version = "2.0.0"
    assert main(["upgrade", "plan", "ih", "--to", "2.1.0", *inv]) == 2
    err = capsys.readouterr().err
    assert "cannot tell which version ih runs now (MIXED: h1 1.0.0, h2 2.0.0)" in err and "--from VERSION" in err
    assert main(["upgrade", "plan", "ih", "--to", "2.1.0", "--from", "2.0.0", *inv]) == 0
    drafted = yaml.safe_load(capsys.readouterr().out)
    assert drafted["from_version"] == "2.0.0" and drafted["migrations"]["schema_to"] == 3
    assert main(["upgrade", "plan", "ih", "--to", "9.0.0", "--from", "1.0.0", *inv]) == 2
    assert "choose one of: 1.0.0, 2.0.0, 2.1.0" in capsys.readouterr().err
