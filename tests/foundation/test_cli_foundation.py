"""The foundation's commands, run as a person runs them: the installed `chatocr` executable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def chatocr(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chatocr", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "chatocr.cli.main"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_plan_demo_prints_a_multi_turn_conversation() -> None:
    result = chatocr("plan", "samples/invoice.txt", "--scenario", "vat_invoice", "--limits", "ernie-2000")
    assert result.returncode == 0, result.stderr
    assert "Planned conversation" in result.stdout
    assert "下面正式开始" in result.stdout
    assert "packing=packed" in result.stdout


def test_plan_json_respects_ernie_limits() -> None:
    result = chatocr("plan", "samples/invoice.txt", "--scenario", "vat_invoice", "--limits", "ernie-2000", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    contents = [m["content"] for m in plan["messages"]]
    assert all(len(c) <= 2000 for c in contents)
    assert sum(len(c) for c in contents) <= 11200
    body = [m["role"] for m in plan["messages"] if m["role"] != "system"]
    assert len(body) % 2 == 1 and body[0] == body[-1] == "user"
    assert plan["report"]["packing"] == "packed"


def test_unknown_scenario_is_a_clear_error_without_traceback() -> None:
    result = chatocr("plan", "samples/invoice.txt", "--scenario", "vat_invoce")
    assert result.returncode == 1
    assert "No scenario named 'vat_invoce'" in result.stderr
    assert "Did you mean 'vat_invoice'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reports_file_line_and_fix(tmp_path: Path) -> None:
    good = (REPO / "scenarios" / "id_card.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "id_card.yaml"
    bad.write_text(good.replace("    type: enum", "    tpye: enum", 1), encoding="utf-8")
    result = chatocr("scenarios", "validate", str(bad), str(REPO / "scenarios" / "vat_invoice.yaml"))
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr and "unknown key 'tpye' (did you mean 'type'?)" in result.stderr
    assert "vat_invoice.yaml: ok" in result.stdout


def test_schema_command_prints_json_schema() -> None:
    result = chatocr("scenarios", "schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "chatocr scenario"


def test_scenarios_list_and_show() -> None:
    listed = chatocr("scenarios", "list")
    assert listed.returncode == 0 and "vat_invoice" in listed.stdout
    shown = chatocr("scenarios", "show", "train_ticket")
    assert shown.returncode == 0 and "starting_station" in shown.stdout


def test_plan_shows_the_focused_prompt_and_its_switches() -> None:
    def plan(*extra: str) -> dict:
        args = ["plan", "samples/invoice.txt", "--scenario", "vat_invoice", "--keys", "seller_name,total_amount"]
        result = chatocr(*args, "--limits", "openai-8k", "--json", *extra)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def sent(plan: dict) -> str:
        return "\n".join(m["content"] for m in plan["messages"])

    focused, whole = plan(), plan("--no-focus", "--max-examples", "all")
    assert len(focused["report"]["included"]) == 2  # the default maximum
    assert len(whole["report"]["included"]) > 2
    assert "[...]" in sent(focused) and "[...]" not in sent(whole)
    # The rule about invoice items is not sent when nobody asked for items.
    assert "items 每一行" in sent(whole) and "items 每一行" not in sent(focused)
    assert len(sent(focused)) < len(sent(whole)) / 2
    bad = chatocr("plan", "samples/invoice.txt", "--scenario", "vat_invoice", "--max-examples", "many")
    assert bad.returncode == 1 and "max_examples" in bad.stderr and "Traceback" not in bad.stderr
