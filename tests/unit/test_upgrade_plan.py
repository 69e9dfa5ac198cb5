"""The upgrade plan file: reading it, every field's check naming the field, the checks against the
inventory (service, tarball checksum, release index), defaults, and the CLI refusing a bad plan
before anything is stored."""

from __future__ import annotations

import copy
import json

import pytest

from hospops import changes, upgrade_plan
from hospops.errors import UserError
from hospops.store import open_store


def _fields(found) -> list[str]:
    return [p.field for p in found]


def _only(found, field):
    hits = [p for p in found if p.field == field]
    assert hits, f"no problem for {field}: {[str(p) for p in found]}"
    return hits[0]


def test_a_good_plan_has_no_problems_with_or_without_the_inventory(upgrade_world):
    plan = upgrade_world.plan()
    assert upgrade_plan.problems(plan) == []
    assert upgrade_plan.problems(plan, upgrade_world.inv()) == []


@pytest.mark.parametrize("field, value, words", [
    ("format", 2, "format 1"),
    ("service", "IH!", "not a valid service"),
    ("from_version", 2.0, "read as a number"),
    ("to_version", "1.0.0", "nothing to upgrade"),
    ("artifacts", [], "exactly one"),
    ("artifacts[0].sha256", "ABC", "64 lowercase hex"),
    ("artifacts[0].file", "../etc/passwd", "climbs out"),
    ("migrations.backward", "downn", "did you mean down"),
    ("migrations.schema_to", 0, "below schema_from"),
    ("migrations.schema_from", -1, "whole number"),
    ("migrations.forward", "yes please", "true or false"),
    ("health_checks.timeout_seconds", 2, "5..600"),
    ("health_checks.path", "health", "does not start with /"),
    ("impact.summary", "", "non-empty text"),
    ("window.start", "2026-11-26T01:00:00", "no UTC offset"),
    ("window.end", "tomorrow", "not an ISO 8601"),
    ("rollback.triggers", [], "non-empty list"),
    ("rollback.triggers[1]", "helth_check_failed", "did you mean health_check_failed"),
    ("rollback.steps", [], "non-empty list"),
    ("rollback.steps[0]", 3, "non-empty text"),
    ("rollback.restore_point", "before upgrade!", "not auto or a name"),
])
def test_each_field_error_names_the_field(upgrade_world, field, value, words):
    plan = upgrade_world.plan()
    _set(plan, field, value)
    problem = _only(upgrade_plan.problems(plan), field)
    assert words in problem.what and problem.fix


def _set(plan, dotted, value):
    """Set ``a.b[0].c`` in ``plan``."""
    parts = dotted.replace("[", ".[").split(".")
    node = plan
    for i, part in enumerate(parts):
        key = int(part[1:-1]) if part.startswith("[") else part
        if i == len(parts) - 1:
            if isinstance(node, list) and key >= len(node):
                node.append(value)
            else:
                node[key] = value
        else:
            node = node[key]


def test_missing_fields_are_named(upgrade_world):
    plan = upgrade_world.plan()
    del plan["impact"]["downtime"], plan["migrations"]["schema_to"], plan["artifacts"][0]["sha256"]
    found = upgrade_plan.problems(plan)
    for field in ("impact.downtime", "migrations.schema_to", "artifacts[0].sha256"):
        assert _only(found, field).what == "is missing"


def test_unknown_keys_are_refused_with_the_name_they_were_meant_to_be(upgrade_world):
    plan = upgrade_world.plan(rolback={"steps": ["x"]})
    plan["health_checks"]["timeout_secs"] = 40
    found = upgrade_plan.problems(plan)
    assert "did you mean rollback?" in _only(found, "rolback").what
    assert _only(found, "health_checks.timeout_secs").fix == "rename it to timeout_seconds"


def test_a_plan_without_rollback_is_refused(upgrade_world):
    plan = upgrade_world.plan()
    del plan["rollback"]
    problem = _only(upgrade_plan.problems(plan), "rollback")
    assert "has no rollback plan" in problem.what and "triggers, steps, restore_point" in problem.what
    assert any("no rollback plan" in p for p in changes.PLAN_VALIDATORS["upgrade"](plan))


def test_fields_that_contradict_each_other(upgrade_world):
    plan = upgrade_world.plan()
    plan["migrations"]["forward"] = False
    plan["migrations"]["backward"] = "restore_point"
    plan["rollback"]["triggers"] = ["payment_probe_failed"]
    plan["service"] = "journey"   # takes no payments: the trigger could never fire
    found = upgrade_plan.problems(plan)
    assert "schema goes from 1 to 2" in _only(found, "migrations.forward").what
    assert "loses what was written" in _only(found, "rollback.data").what
    assert "no payment probe runs" in _only(found, "rollback.triggers").what


def test_service_artifact_and_index_are_checked_against_the_inventory(upgrade_world):
    inv = upgrade_world.inv()
    plan = upgrade_world.plan(service="lab")
    assert "did you mean" not in _only(upgrade_plan.problems(plan, inv), "service").what
    assert "use one of: ih, journey" == _only(upgrade_plan.problems(plan, inv), "service").fix

    plan = upgrade_world.plan()
    plan["artifacts"][0]["sha256"] = upgrade_world.sha["1.0.0"]  # a real checksum, of another file
    problem = _only(upgrade_plan.problems(plan, inv), "artifacts[0].sha256")
    assert "does not match" in problem.what and upgrade_world.sha["2.0.0"] in problem.what

    (upgrade_world.releases / "ih" / "hospapp-ih-2.0.0.tar.gz").write_bytes(b"tampered")
    plan = upgrade_world.plan()
    assert "does not match" in _only(upgrade_plan.problems(plan, inv), "artifacts[0].sha256").what

    plan["artifacts"][0]["file"] = "ih/missing.tar.gz"
    assert "does not exist" in _only(upgrade_plan.problems(plan, inv), "artifacts[0].file").what


def test_schema_to_must_match_the_release_index(upgrade_world):
    plan = upgrade_world.plan()
    plan["migrations"]["schema_to"] = 3
    problem = _only(upgrade_plan.problems(plan, upgrade_world.inv()), "migrations.schema_to")
    assert "requires schema 2" in problem.what and problem.fix == "write schema_to: 2"
    assert upgrade_plan.problems(plan) == []  # without the inventory the index is not read


def test_without_forward_migrations_the_schema_must_already_suit_the_release(upgrade_world):
    inv = upgrade_world.inv()
    back = upgrade_world.plan(from_version="2.0.0", to_version="1.0.0",
                              artifacts=[{"file": "ih/hospapp-ih-1.0.0.tar.gz", "sha256": upgrade_world.sha["1.0.0"]}],
                              migrations={"forward": False, "schema_from": 2, "schema_to": 2, "backward": "none"})
    assert upgrade_plan.problems(back, inv) == []  # v1 runs on the compatible v2 schema
    plan = upgrade_world.plan(migrations={"forward": False, "schema_from": 1, "schema_to": 1, "backward": "none"})
    problem = _only(upgrade_plan.problems(plan, inv), "migrations.schema_to")
    assert "needs at least schema 2" in problem.what and "forward: true" in problem.fix


def test_a_release_missing_from_the_index_is_named(upgrade_world):
    plan = upgrade_world.plan(to_version="9.9.9")
    found = upgrade_plan.problems(plan, upgrade_world.inv())
    assert "not in the release index" in _only(found, "to_version").what
    assert "1.0.0, 2.0.0, 2.1.0" in _only(found, "to_version").fix


def test_normalise_fills_in_defaults_and_resolves_the_restore_point(upgrade_world):
    plan = upgrade_world.plan()
    before = copy.deepcopy(plan)
    done = upgrade_plan.normalise(plan)
    assert plan == before  # the input is left alone
    assert done["reason"] == "upgrade ih 1.0.0 -> 2.0.0"
    assert done["health_checks"]["payment_probe"] is True
    assert done["rollback"]["restore_point"] == "auto"
    resolved = upgrade_plan.normalise(plan, change_id="CHG-20261126-a1b2c3")
    assert resolved["rollback"]["restore_point"] == "upgrade_CHG_20261126_a1b2c3"
    assert upgrade_plan.normalise(upgrade_world.plan(service="journey"), inventory=upgrade_world.inv())[
        "health_checks"]["payment_probe"] is False
    assert upgrade_plan.problems(resolved) == []
    json.dumps(resolved, allow_nan=False)  # the plan is part of the signed request: plain JSON


def test_load_keeps_dates_as_written_and_refuses_duplicates_and_non_mappings(upgrade_world, tmp_path):
    path = tmp_path / "p.yml"
    path.write_text("format: 1\nwindow:\n  start: 2026-11-26T01:00:00+08:00\n")
    assert upgrade_plan.load(path)["window"]["start"] == "2026-11-26T01:00:00+08:00"
    path.write_text("format: 1\nservice: ih\nservice: portal\n")
    with pytest.raises(UserError, match="'service' appears twice"):
        upgrade_plan.load(path)
    path.write_text("- format: 1\n")
    with pytest.raises(UserError, match=r"p\.yml is not a mapping"):
        upgrade_plan.load(path)
    with pytest.raises(UserError, match="cannot read upgrade plan"):
        upgrade_plan.load(tmp_path / "nope.yml")
    js = tmp_path / "p.json"
    js.write_text(json.dumps(upgrade_world.plan()))
    assert upgrade_plan.problems(upgrade_plan.load(js)) == []


# -- the CLI -----------------------------------------------------------------------------------
def _request(upgrade_world, plan_path, *extra):
    from hospops.cli import main

    return main(["change", "request", "upgrade", str(plan_path), "-i", str(upgrade_world.inventory),
                 "--as", "dave", *extra])


def _rows():
    store = open_store()
    try:
        return store.query("SELECT id, targets, request FROM changes")
    finally:
        store.close()


def test_cli_refuses_a_bad_plan_with_every_problem_and_stores_nothing(upgrade_world, capsys):
    plan = upgrade_world.plan()
    del plan["rollback"]
    plan["migrations"]["backward"] = "downn"
    plan["artifacts"][0]["sha256"] = upgrade_world.sha["1.0.0"]
    assert _request(upgrade_world, upgrade_world.write(plan)) == 2
    err = capsys.readouterr().err
    assert "nothing was filed (3 problems)" in err
    lines = [line.strip() for line in err.splitlines()]
    assert any(line.startswith("rollback: the plan has no rollback plan") for line in lines)
    assert any(line.startswith("migrations.backward: 'downn'") for line in lines)
    assert any(line.startswith("artifacts[0].sha256: does not match") for line in lines)
    assert _rows() == []
    assert open_store().query("SELECT kind FROM audit") == []


def test_cli_files_a_good_plan_with_the_service_hosts_and_the_gateways(upgrade_world, capsys):
    assert _request(upgrade_world, upgrade_world.write(upgrade_world.plan())) == 0, capsys.readouterr().err
    out = capsys.readouterr()
    (row,) = _rows()
    assert row["id"] == out.out.strip() and "hospops upgrade rehearse" in out.err
    assert json.loads(row["targets"]) == ["gateways", "web"]
    request = json.loads(row["request"])
    assert request["plan"]["reason"] == "upgrade ih 1.0.0 -> 2.0.0" == request["reason"]
    assert request["plan"]["health_checks"]["payment_probe"] is True


def test_cli_window_flags_override_the_plans_window(upgrade_world, capsys):
    plan = upgrade_world.plan()
    assert _request(upgrade_world, upgrade_world.write(plan), "--window-start", "2099-01-01T01:00",
                    "--window-end", "2099-01-01T04:00") == 0, capsys.readouterr().err
    request = json.loads(_rows()[0]["request"])
    assert request["plan"]["window"] == {"start": "2099-01-01T01:00:00+08:00", "end": "2099-01-01T04:00:00+08:00"}
    assert request["window"] == {"start": "2098-12-31T17:00:00+00:00", "end": "2098-12-31T20:00:00+00:00"}


def test_cli_upgrade_needs_a_plan_and_no_targets(upgrade_world, capsys):
    from hospops.cli import main

    inv = ["-i", str(upgrade_world.inventory)]
    assert main(["change", "request", "upgrade", "--reason", "new release", *inv]) == 2
    assert "needs its upgrade plan" in capsys.readouterr().err
    assert _request(upgrade_world, upgrade_world.write(upgrade_world.plan()), "-t", "h1") == 2
    assert "drop --target" in capsys.readouterr().err
    assert main(["change", "request", "restart", str(upgrade_world.write(upgrade_world.plan())), "-t", "h1",
                 "--reason", "hangs", *inv]) == 2
    assert "only an upgrade takes a plan file" in capsys.readouterr().err
    assert _rows() == []


def test_the_request_refuses_a_plan_whose_window_is_not_the_requests(upgrade_world, store, approval_lab):
    plan = upgrade_plan.normalise(upgrade_world.plan())
    with pytest.raises(UserError, match="window.start"):
        changes.request(store, approval_lab.policy(), action="upgrade", targets=["web"], reason="r",
                        requester="dave", plan=plan)
    assert changes.list_changes(store) == []
