"""The vetted node classes and the verdict on a job's classes (workflows.vetting), and the settings that
choose them (handler.config)."""

from __future__ import annotations

from handler.config import Settings
from workflows.vetting import core_classes, judge, parse_policy, vetted_classes, workflow_classes

# /object_info as ComfyUI 0.3.75 shapes it: `python_module` says where a class comes from
OBJECT_INFO = {
    "KSampler": {"python_module": "nodes"},
    "RegexExtract": {"python_module": "comfy_extras.nodes_string"},
    "OpenAIChatNode": {"python_module": "comfy_api_nodes.nodes_openai"},
    "VisualizeCUDAMemoryHistory": {"python_module": "custom_nodes.ComfyUI-KJNodes"},
    "Shadow": {"python_module": "custom_nodes.nodes"},  # a pack named like a core module stays a pack
    "NoModule": {},
}


def test_core_is_what_python_module_says_ships_with_comfyui():
    assert core_classes(OBJECT_INFO) == {"KSampler", "RegexExtract", "OpenAIChatNode"}


def test_vetted_is_core_plus_registered_workflows_plus_trusted():
    registered = [{"1": {"class_type": "SaveStringKJ", "inputs": {}}}, {"x": "not a node"}]
    vetted = vetted_classes(OBJECT_INFO, registered, frozenset({"RPTestProbe"}))
    assert vetted == {"KSampler", "RegexExtract", "OpenAIChatNode", "SaveStringKJ", "RPTestProbe"}


def test_a_job_with_only_vetted_classes_runs_on():
    vetted = frozenset({"KSampler", "SaveImage"})
    assert judge(frozenset({"KSampler"}), vetted, "restart").action == "run"
    assert judge(frozenset(), vetted, "deny").action == "run"


def test_unvetted_classes_restart_after_or_deny_and_say_which():
    workflow = {
        "1": {"class_type": "KSampler", "inputs": {}},
        "2": {"class_type": "VisualizeCUDAMemoryHistory", "inputs": {}},
        "3": {"class_type": "Shadow", "inputs": {}},
    }
    classes = workflow_classes(workflow)
    vetted = core_classes(OBJECT_INFO)
    verdict = judge(classes, vetted, "restart")
    assert verdict.action == "restart_after" and verdict.unvetted == ("Shadow", "VisualizeCUDAMemoryHistory")
    assert "Shadow, VisualizeCUDAMemoryHistory" in verdict.warning() and "TRUSTED_NODES" in verdict.warning()
    denied = judge(classes, vetted, "deny")
    assert denied.action == "deny"
    finding = denied.finding()
    assert finding.code == "POLICY_DENIED" and "VisualizeCUDAMemoryHistory" in finding.message
    assert "TRUSTED_NODES" in finding.fix


def test_trust_and_a_star_run_everything():
    assert judge(frozenset({"Anything"}), frozenset(), "trust").action == "run"
    assert judge(frozenset({"Anything"}), frozenset({"*"}), "deny").action == "run"


def test_the_policy_setting_falls_back_to_the_safe_default():
    assert parse_policy("deny") == "deny" and parse_policy(" TRUST ") == "trust"
    assert parse_policy(None) == "restart" and parse_policy("sometimes") == "restart"
    s = Settings.from_env({"UNVETTED_NODES": "deny", "TRUSTED_NODES": "A, B,", "COMFY_MAX_PROCS": "512"})
    assert s.unvetted_nodes == "deny" and s.trusted_nodes == {"A", "B"} and s.max_procs == 512
    default = Settings.from_env({})
    assert default.unvetted_nodes == "restart" and default.trusted_nodes == frozenset() and default.max_procs == 4096
