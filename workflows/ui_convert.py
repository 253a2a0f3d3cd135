"""Convert the editor's UI-format workflow ("Save") to API format, from /object_info alone.

Why: users send what the editor saves; ComfyUI's /prompt only takes API format. The editor does this
conversion in the browser (graphToPrompt); this module reproduces it in pure Python so the worker and
the client can accept both formats. Pure: plain data in, (workflow, findings) out; never raises.

Evaluation of comfyui-autograph 2.3.0 (PyPI, MIT, stdlib-only core; extras pull pillow / mcp): not used.
- It does convert from an /object_info dict alone, flattens `definitions.subgraphs` (promoted widget values
  included), resolves Reroute / PrimitiveNode and type-matched bypass, and skips muted nodes.
- But widgets are matched to inputs by a scoring alignment on value types, not by the editor's rules: a
  seed's control value is dropped only when it does not fit the next input. Tried: a node with a seed then a
  STRING widget got text="randomize"; with 0.3.75's /object_info, dict-form widgets_values (VHS) were
  silently replaced by defaults (EmptyImage width 64 -> 512); links from muted nodes were left dangling.
- No legacy group nodes, no `_meta.title`, errors in its own shape; and the converter is one 2,300-line file
  of a 14,000-line package that also fetches over HTTP, imports ComfyUI in-process and ships an MCP server.
Verdict: our own, following the frontend's graphToPrompt / ExecutableNodeDTO rules, reporting findings.

What it handles: widgets_values in `input_order` (list or dict form), seed-style control values, upload
button values, converted widgets (a link wins), Reroute / PrimitiveNode / GetNode-SetNode, muted (mode 2)
and bypassed (mode 4) nodes, subgraphs expanded to ids "<instance>:<inner>", array values as {"__value__"}.
Not handled (UI_CONVERT_UNSUPPORTED): legacy group nodes ("workflow>..."), browser-produced widgets (3D
viewer, webcam). `{a|b}` dynamic prompts are sent as written (the editor picks one at queue time).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.analysis import combo_choices, input_specs, is_ui_format, spec_options, spec_type
from workflows.findings import Finding, error, has_errors, warning

MUTED, BYPASS = 2, 4  # LiteGraph node modes: NEVER and BYPASS
SUBGRAPH_INPUT, SUBGRAPH_OUTPUT = -10, -20  # ids of a subgraph's IO pseudo-nodes in its links
MAX_SUBGRAPH_DEPTH = 16
MAX_HOPS = 256  # links followed for one input (reroute / bypass chains); guards against cycles and, each hop two
# frames of recursion, keeps well inside Python's ~1,000-frame stack (a 600-reroute chain once ran out of it)
MAX_UI_NODES = 5000  # nodes after subgraph expansion: counted before anything is expanded

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
# Widgets whose value the browser produces at queue time (3D viewer capture, webcam frame).
BROWSER_WIDGETS = frozenset({"LOAD_3D", "LOAD_3D_ANIMATION", "WEBCAM", "AUDIO_RECORD"})
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "file_upload", "animated_image_upload")
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
LEGACY_CONTROL_NAMES = ("seed", "noise_seed")
REROUTES = frozenset({"Reroute", "Reroute (rgthree)"})
UI_ONLY = frozenset({"Note", "MarkdownNote", "PrimitiveNode", "SetNode", "GetNode", *REROUTES})
DYNAMIC_PROMPT = re.compile(r"\{[^{}]*\|[^{}]*\}")

FIX_EXPORT = "Export the workflow from the editor with Workflow > Export (API) and send that file."


@dataclass(frozen=True, slots=True)
class ConversionResult:
    """The API-format workflow (ids as strings, `_meta.title` set) and what could not be converted."""

    workflow: dict[str, Any]
    problems: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem is an error: the workflow means what the editor would have queued."""
        return bool(self.workflow) and not has_errors(self.problems)


def ui_to_api(
    ui_workflow: Any, object_info: Mapping[str, Any], versions: Mapping[str, Collection[str]] | None = None
) -> ConversionResult:
    """Convert a UI-format workflow using the deployment's /object_info. Never raises on bad data.

    `versions`: what is installed, per pack folder (`comfy-core` for ComfyUI): its commit and release
    version. A node whose saved values don't fit this ComfyUI's widget list is mapped only when the
    save's `properties.ver` says it was made with exactly that version (its layout is then known);
    otherwise it is refused, naming the node, never guessed."""
    if not is_ui_format(ui_workflow):
        return ConversionResult(
            {},
            [
                error(
                    "UI_CONVERT_INVALID",
                    "The workflow is not in the editor's UI format ('nodes' and 'links').",
                    FIX_EXPORT,
                )
            ],
        )
    try:
        info = object_info if isinstance(object_info, Mapping) else {}
        return _Converter(ui_workflow, info, versions or {}).run()
    except Exception as exc:  # the promise is "never raises": anything unforeseen becomes a finding
        return ConversionResult(
            {},
            [
                error(
                    "UI_CONVERT_UNSUPPORTED",
                    f"The UI workflow could not be converted ({type(exc).__name__}: {str(exc)[:200]}).",
                    FIX_EXPORT,
                )
            ],
        )


# ---------------------------------------------------------------------------------------------
# Widgets: which inputs are widgets, and which widgets_values entry belongs to which input
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WidgetSlot:
    name: str
    spec: Any
    kind: str
    control: bool  # the editor adds a "control after generate" widget after it
    upload: bool  # the editor adds upload button widget(s) after it
    browser: bool  # the value is produced by the browser at queue time


def _input_order(info: Mapping[str, Any]) -> list[str]:
    specs = input_specs(info)
    order = info.get("input_order")
    if isinstance(order, Mapping):
        names = [n for section in ("required", "optional") for n in (order.get(section) or []) if isinstance(n, str)]
        return [n for n in names if n in specs] + [n for n in specs if n not in names]
    return list(specs)


def widget_slots(info: Mapping[str, Any]) -> list[WidgetSlot]:
    """The node's widgets in the order the editor creates them (and saves their values)."""
    specs = input_specs(info)
    slots = []
    for name in _input_order(info):
        spec = specs[name][0]
        kind = spec_type(spec)
        opts = spec_options(spec)
        if opts.get("forceInput") or (kind not in WIDGET_TYPES and kind not in BROWSER_WIDGETS):
            continue
        control = opts.get("control_after_generate")
        if control is None and kind == "INT":
            control = name in LEGACY_CONTROL_NAMES  # the editor's legacy convention
        slots.append(
            WidgetSlot(
                name,
                spec,
                kind,
                bool(control) and kind in ("INT", "COMBO"),
                any(opts.get(flag) for flag in UPLOAD_FLAGS),
                kind in BROWSER_WIDGETS,
            )
        )
    return slots


def _fits(value: Any, slot: WidgetSlot) -> bool:
    if slot.kind == "INT":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if slot.kind == "FLOAT":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if slot.kind == "STRING":
        return isinstance(value, str)
    if slot.kind == "BOOLEAN":
        return isinstance(value, bool)
    if slot.kind == "COMBO":
        if not isinstance(value, str | int | float | list) or isinstance(value, bool):
            return False
        choices = combo_choices(slot.spec)
        # a number can't belong to a list of names (a sampler, a model file): a shifted value
        return not (isinstance(value, int | float) and choices and all(isinstance(c, str) for c in choices))
    return True


def _default(slot: WidgetSlot) -> Any:
    opts = spec_options(slot.spec)
    if "default" in opts:
        return opts["default"]
    choices = combo_choices(slot.spec)
    return choices[0] if choices else None


def map_widgets(slots: list[WidgetSlot], values: Any) -> tuple[dict[str, Any], list[str], list[str], int]:
    """Widget values by input name, plus (names defaulted, names whose value has the wrong type, extras).

    List form follows the editor: one value per widget in input order, then a control value after
    seed-style widgets, then upload-button values after upload combos (they absorb any surplus).
    Dict form (VHS and other packs) is keyed by input name already.
    """
    out: dict[str, Any] = {}
    defaulted: list[str] = []
    if isinstance(values, Mapping):
        for slot in slots:
            if slot.name in values:
                out[slot.name] = values[slot.name]
            else:
                defaulted.append(slot.name)
        return out, defaulted, [n for n in out if not _fits(out[n], _slot(slots, n))], 0
    values = values if isinstance(values, list) else []
    i = 0
    for j, slot in enumerate(slots):
        if i >= len(values):
            defaulted.append(slot.name)
            continue
        out[slot.name] = values[i]
        i += 1
        nxt = values[i] if i < len(values) else None
        later = slots[j + 1] if j + 1 < len(slots) else None
        if (
            slot.kind in ("INT", "COMBO")
            and isinstance(nxt, str)
            and nxt in CONTROL_VALUES
            and (slot.control or later is None or not _fits(nxt, later))
        ):
            i += 1  # control_after_generate: editor-only, not sent
            if slot.kind == "COMBO" and slot.control and _surplus(values, i, slots, j) > 0:
                i += 1  # control_filter_list, added with a combo's control widget
        if slot.upload:
            i += max(0, _surplus(values, i, slots, j))  # the upload button(s): editor-only
    wrong = [n for n in out if not _fits(out[n], _slot(slots, n))]
    extra = [v for v in values[i:] if v not in (None, "")]  # empty ones: editor display widgets
    return out, defaulted, wrong, len(extra)


def _misplaced(slots: list[WidgetSlot], values: Mapping[str, Any], linked: set[str], wrong: list[str]) -> list[str]:
    """Combo widgets holding a value that is not theirs but another combo's of the same node (a scheduler
    in the sampler input): proof that saved values shifted, not a missing file or a renamed option."""
    combos = {s.name: set(map(str, combo_choices(s.spec) or ())) for s in slots if s.kind == "COMBO"}
    out = []
    for name, choices in combos.items():
        value = values.get(name)
        if name in linked or name in wrong or not isinstance(value, str) or value in choices:
            continue
        if any(value in other for key, other in combos.items() if key != name):
            out.append(name)
    return out


def _slot(slots: list[WidgetSlot], name: str) -> WidgetSlot:
    return next(s for s in slots if s.name == name)


def _surplus(values: list[Any], i: int, slots: list[WidgetSlot], j: int) -> int:
    """Values left beyond what the widgets after slot j need (one each, two with a control widget)."""
    return (len(values) - i) - sum(1 + s.control for s in slots[j + 1 :])


# ---------------------------------------------------------------------------------------------
# Graph scopes: the root graph and each expanded subgraph instance
# ---------------------------------------------------------------------------------------------


def _key(value: Any) -> str | None:
    """Node and link ids as dictionary keys: ints and strings, never bools or floats."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return None


def _links(raw: Any) -> dict[str, tuple[str, int]]:
    """link id -> (origin node id, origin slot), from [id, origin, slot, target, slot, type] or objects."""
    table: dict[str, tuple[str, int]] = {}
    for link in raw if isinstance(raw, list) else []:
        if isinstance(link, list) and len(link) >= 3:
            lid, origin, slot = link[0], link[1], link[2]
        elif isinstance(link, Mapping):
            lid, origin, slot = link.get("id"), link.get("origin_id"), link.get("origin_slot")
        else:
            continue
        key, origin_key, slot_int = _key(lid), _key(origin), _int(slot)
        if key is not None and origin_key is not None and slot_int is not None:
            table[key] = (origin_key, slot_int)
    return table


def _inputs(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = node.get("inputs")
    return [i if isinstance(i, Mapping) else {} for i in raw] if isinstance(raw, list) else []


def _outputs(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = node.get("outputs")
    return [o if isinstance(o, Mapping) else {} for o in raw] if isinstance(raw, list) else []


def _mode(node: Mapping[str, Any]) -> int:
    mode = node.get("mode")
    return mode if isinstance(mode, int) and not isinstance(mode, bool) else 0


def _has_links(node: Mapping[str, Any]) -> bool:
    return any(i.get("link") is not None for i in _inputs(node)) or any(
        isinstance(o.get("links"), list) and o["links"] for o in _outputs(node)
    )


def _type_ok(a: Any, b: Any) -> bool:
    """LiteGraph.isValidConnection: '*' and empty match anything; 'A,B' lists match on any overlap."""
    if not a or not b or a == b or "*" in (a, b):
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return bool({t.strip().upper() for t in a.split(",")} & {t.strip().upper() for t in b.split(",")})


@dataclass
class _Scope:
    nodes: dict[str, Mapping[str, Any]]
    order: list[Mapping[str, Any]]
    links: dict[str, tuple[str, int]]
    path: tuple[str, ...] = ()
    parent: _Scope | None = None
    instance: Mapping[str, Any] | None = None
    definition: Mapping[str, Any] | None = None
    promoted: dict[str, Any] = field(default_factory=dict)
    output_links: dict[int, str] = field(default_factory=dict)  # subgraph output slot -> inner link id

    def exec_id(self, node_id: Any) -> str:
        return ":".join((*self.path, str(node_id)))

    def setter(self, name: Any) -> Mapping[str, Any] | None:
        return next(
            (
                n
                for n in self.order
                if n.get("type") == "SetNode"
                and isinstance(n.get("widgets_values"), list)
                and n["widgets_values"][:1] == [name]
            ),
            None,
        )


def _scope(nodes_raw: Any, links_raw: Any, **kw: Any) -> _Scope:
    order = [n for n in nodes_raw if isinstance(n, Mapping)] if isinstance(nodes_raw, list) else []
    nodes = {k: n for n in order if (k := _key(n.get("id"))) is not None}
    return _Scope(nodes, order, _links(links_raw), **kw)


@dataclass(frozen=True, slots=True)
class _Ref:
    node: str
    slot: int


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


# ---------------------------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------------------------


class _Converter:
    def __init__(
        self, ui: Mapping[str, Any], object_info: Mapping[str, Any], versions: Mapping[str, Collection[str]]
    ) -> None:
        self.ui = ui
        self.info = object_info
        self.versions = versions
        self.problems: list[Finding] = []
        self.output: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}  # exec id -> why it is not in the output
        self.children: dict[str, _Scope | None] = {}
        self.dropped: list[tuple[str, str, str]] = []  # (node, input, where it came from)
        definitions = ui.get("definitions")
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, Mapping) else None
        self.subgraphs: dict[str, Mapping[str, Any]] = {
            sg["id"]: sg
            for sg in (subgraphs if isinstance(subgraphs, list) else [])
            if isinstance(sg, Mapping) and isinstance(sg.get("id"), str)
        }
        extra = ui.get("extra")
        groups = extra.get("groupNodes") if isinstance(extra, Mapping) else None
        self.group_nodes = set(groups) if isinstance(groups, Mapping) else set()

    def run(self) -> ConversionResult:
        size = expanded_size(self.ui.get("nodes"), self.subgraphs)
        if size > MAX_UI_NODES:
            return ConversionResult({}, [too_large(size)])
        root = _scope(self.ui.get("nodes"), self.ui.get("links"))
        self.walk(root)
        self.drop_dangling()
        if not self.output and not has_errors(self.problems):
            self.problems.append(
                error("UI_CONVERT_INVALID", "The UI workflow has no node that ComfyUI would run.", FIX_EXPORT)
            )
        return ConversionResult(self.output, self.problems)

    # -- emitting nodes ------------------------------------------------------------------------

    def walk(self, scope: _Scope) -> None:
        for node in scope.order:
            node_type = node.get("type")
            exec_id = scope.exec_id(node.get("id"))
            mode = _mode(node)
            if not isinstance(node_type, str) or _key(node.get("id")) is None:
                self.problems.append(
                    warning(
                        "UI_CONVERT_UNSUPPORTED",
                        f"A node without a valid id or type ({str(node.get('id'))[:40]}) was skipped.",
                        FIX_EXPORT,
                    )
                )
                continue
            if mode in (MUTED, BYPASS):
                self.skipped[exec_id] = "muted" if mode == MUTED else "bypassed"
            elif node_type in self.subgraphs:
                child = self.child(scope, node)
                if child is not None:
                    self.walk(child)
                else:
                    self.skipped[exec_id] = "a subgraph nested too deeply"
            elif node_type in self.group_nodes or node_type.startswith(("workflow>", "workflow/")):
                self.skipped[exec_id] = "a legacy group node"
                self.problems.append(
                    error(
                        "UI_CONVERT_UNSUPPORTED",
                        f"Node {exec_id} is a legacy group node ({node_type!r}), which cannot be converted.",
                        "In the editor, right-click the group node > Convert to nodes (or to a subgraph), "
                        "save again, or export with Workflow > Export (API).",
                        node_id=exec_id,
                    )
                )
            elif node_type in UI_ONLY:
                continue
            elif isinstance(self.info.get(node_type), Mapping):
                self.output[exec_id] = self.convert(scope, node, node_type, exec_id)
            elif _has_links(node):
                self.output[exec_id] = self.convert_unknown(scope, node, node_type, exec_id)
            # else: an unlinked node the deployment does not know (label, note, group muter): UI only

    def convert(self, scope: _Scope, node: Mapping[str, Any], node_type: str, exec_id: str) -> dict[str, Any]:
        info = self.info[node_type]
        slots = widget_slots(info)
        values, defaulted, wrong, extra = map_widgets(slots, node.get("widgets_values"))
        if extra and shows_progress_text(info) and _display_only(node.get("widgets_values"), extra):
            extra = 0  # the text the node displays (GetImageSize's size), saved by the editor: not an input
        linked = {i["name"] for i in _inputs(node) if isinstance(i.get("name"), str) and i.get("link") is not None}
        for name in defaulted:
            if name not in linked:
                values[name] = _default(_slot(slots, name))
        inputs = {name: _wrap(v) for name, v in values.items()}
        self.link_inputs(scope, node, inputs)
        lost = [n for n in defaulted if n not in linked]
        shifted = [n for n in wrong if n not in linked] + _misplaced(slots, values, linked, wrong)
        if lost or shifted or extra:
            self.mismatch(node, info, node_type, exec_id, slots, values, lost, shifted, extra)
        for slot in slots:
            value = inputs.get(slot.name)
            if slot.browser and slot.name not in linked:
                self.problems.append(
                    error(
                        "UI_CONVERT_UNSUPPORTED",
                        f"Node {exec_id} ({node_type}): input {slot.name!r} is filled by the browser at queue "
                        "time (3D viewer or webcam) and cannot be converted.",
                        FIX_EXPORT,
                        node_id=exec_id,
                        input=slot.name,
                    )
                )
            elif (
                spec_options(slot.spec).get("dynamicPrompts")
                and isinstance(value, str)
                and DYNAMIC_PROMPT.search(value)
            ):
                self.problems.append(
                    warning(
                        "UI_CONVERT_DYNAMIC_PROMPT",
                        f"Node {exec_id}: {slot.name} uses {{a|b}} choices, which the editor resolves at queue "
                        "time; it is sent as written.",
                        "Pick one alternative in the text if the choice matters.",
                        node_id=exec_id,
                        input=slot.name,
                    )
                )
        return {"inputs": inputs, "class_type": node_type, "_meta": {"title": _title(node, info, node_type)}}

    def mismatch(
        self,
        node: Mapping[str, Any],
        info: Mapping[str, Any],
        node_type: str,
        exec_id: str,
        slots: list[WidgetSlot],
        values: Mapping[str, Any],
        lost: list[str],
        shifted: list[str],
        extra: int,
    ) -> None:
        """Saved values that don't fit this version's widgets. Missing trailing values are accepted
        (defaults) only when the save was made with exactly the installed version, whose layout is
        this one; "fewer values than widgets" is never read as "widgets appended at the end"."""
        saved = node.get("widgets_values")
        saved_n = len(saved) if isinstance(saved, list | Mapping) else 0
        expected_n = sum(1 + s.control for s in slots)
        saved_ver, installed, same = self.layout_known(node, info)
        parts = []
        if shifted:
            parts.append(
                ", ".join(f"{n} would get {values.get(n)!r} ({_slot(slots, n).kind} expected)" for n in shifted)
            )
        if extra:
            parts.append(f"{extra} saved value(s) left over")
        if lost:
            parts.append(f"no saved value for {', '.join(lost)}" + ("" if shifted or extra else " (defaults used)"))
        refuse = bool(shifted or extra) or not same
        made = (
            f"Node {exec_id} was saved with version {saved_ver}"
            + (f", this ComfyUI has {installed}" if installed else "")
            if saved_ver
            else f"The save does not record the version node {exec_id} was made with"
        )
        why = (
            "; its layout in that version is not known here, so its values were not mapped (no positional guessing)."
            if refuse
            else " (the installed version)."
        )
        self.problems.append(
            (error if refuse else warning)(
                "UI_CONVERT_WIDGET_MISMATCH",
                f"Node {exec_id} ({node_type}): {saved_n} saved widget value(s), this ComfyUI's {node_type} "
                f"expects {expected_n} ({', '.join(s.name for s in slots) or 'none'}): {'; '.join(parts)}. "
                f"{made}{why}",
                f"Open the workflow in an editor with this ComfyUI / node pack version, check node {exec_id}'s "
                "values and save again; or install the node pack version the workflow was made with.",
                node_id=exec_id,
            )
        )

    def layout_known(self, node: Mapping[str, Any], info: Mapping[str, Any]) -> tuple[str | None, str, bool]:
        """(the version the save records, what is installed, whether they are the same version)."""
        props = node.get("properties")
        ver = props.get("ver") if isinstance(props, Mapping) else None
        ver = ver.strip() if isinstance(ver, str) and ver.strip() else None
        ids = [i for i in self.versions.get(pack_key(info), ()) if i]
        installed = " / ".join(i[:12] for i in ids)
        same = ver is not None and any(_same_version(ver, i) for i in ids)
        return ver, installed, same

    def convert_unknown(self, scope: _Scope, node: Mapping[str, Any], node_type: str, exec_id: str) -> dict[str, Any]:
        saved = node.get("widgets_values")
        inputs: dict[str, Any] = {}
        if isinstance(saved, Mapping):  # keyed by input name: usable without the definition
            inputs = {k: _wrap(v) for k, v in saved.items() if isinstance(k, str) and not isinstance(v, Mapping)}
        lost = isinstance(saved, list) and bool(saved)
        self.link_inputs(scope, node, inputs)
        self.problems.append(
            (error if lost else warning)(
                "UI_CONVERT_UNKNOWN_NODE",
                f"Node {exec_id}: class {node_type!r} is not in this ComfyUI's /object_info"
                + (", so its widget values could not be mapped to inputs." if lost else "."),
                "Install the node pack that provides it on the worker, then convert again.",
                node_id=exec_id,
            )
        )
        return {"inputs": inputs, "class_type": node_type, "_meta": {"title": _title(node, {}, node_type)}}

    def link_inputs(self, scope: _Scope, node: Mapping[str, Any], inputs: dict[str, Any]) -> None:
        """Connected inputs: a link wins over the widget value, like a converted widget in the editor."""
        for entry in _inputs(node):
            name, link = entry.get("name"), _key(entry.get("link"))
            if not isinstance(name, str) or not name or link is None:
                continue
            resolved = self.resolve_link(scope, link, entry.get("type"), scope.exec_id(node.get("id")), name, [0])
            if isinstance(resolved, _Ref):
                inputs[name] = [resolved.node, resolved.slot]
            elif isinstance(resolved, _Literal):
                inputs[name] = _wrap(resolved.value)

    # -- resolving links -----------------------------------------------------------------------

    def resolve_link(
        self, scope: _Scope, link: str, want: Any, target: str, name: str, hops: list[int]
    ) -> _Ref | _Literal | None:
        hops[0] += 1
        if hops[0] > MAX_HOPS:
            self.broken(target, name, "the link chain loops or is too long")
            return None
        if link not in scope.links:
            self.broken(target, name, f"link {link} is not in the workflow's link table")
            return None
        origin, slot = scope.links[link]
        if origin == str(SUBGRAPH_INPUT) and scope.instance is not None and scope.parent is not None:
            return self.resolve_subgraph_input(scope, slot, want, target, name, hops)
        node = scope.nodes.get(origin)
        if node is None:
            self.broken(target, name, f"it is linked to node {origin}, which does not exist")
            return None
        return self.resolve_output(scope, node, slot, want, target, name, hops)

    def resolve_subgraph_input(
        self, scope: _Scope, slot: int, want: Any, target: str, name: str, hops: list[int]
    ) -> _Ref | _Literal | None:
        assert scope.definition is not None and scope.instance is not None and scope.parent is not None
        declared = scope.definition.get("inputs")
        declared = declared if isinstance(declared, list) else []
        entry = declared[slot] if 0 <= slot < len(declared) else None
        input_name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(input_name, str):
            self.broken(target, name, f"subgraph input {slot} does not exist")
            return None
        outer = next((i for i in _inputs(scope.instance) if i.get("name") == input_name), None)
        outer_link = _key(outer.get("link")) if outer is not None else None
        if outer_link is not None:
            return self.resolve_link(scope.parent, outer_link, want, target, name, hops)
        if input_name in scope.promoted:
            return _Literal(scope.promoted[input_name])
        return None  # unconnected, no value on the instance: the inner widget's own value stands

    def resolve_output(
        self, scope: _Scope, node: Mapping[str, Any], slot: int, want: Any, target: str, name: str, hops: list[int]
    ) -> _Ref | _Literal | None:
        node_type = node.get("type") if isinstance(node.get("type"), str) else ""
        exec_id = scope.exec_id(node.get("id"))
        if _mode(node) == BYPASS:
            index = _bypass_input(node, slot, want)
            link = _key(_inputs(node)[index].get("link")) if index >= 0 else None
            if link is None:
                why = f"has no input of type {want}" if index < 0 else "has that input unconnected"
                self.dropped.append((target, name, f"bypassed node {exec_id}, which {why}"))
                return None
            return self.resolve_link(scope, link, want, target, name, hops)
        if node_type in self.subgraphs and _mode(node) != MUTED:
            child = self.child(scope, node)
            inner = child.output_links.get(slot) if child is not None else None
            if child is None or inner is None:
                self.broken(target, name, f"output {slot} of subgraph node {exec_id} is not connected inside")
                return None
            return self.resolve_link(child, inner, want, target, name, hops)
        if node_type in REROUTES:
            ins = _inputs(node)
            link = _key(ins[0].get("link")) if ins else None
            return self.resolve_link(scope, link, want, target, name, hops) if link is not None else None
        if node_type == "PrimitiveNode":
            saved = node.get("widgets_values")
            return _Literal(saved[0]) if isinstance(saved, list) and saved else None
        if node_type == "GetNode":
            saved = node.get("widgets_values")
            setter = scope.setter(saved[0]) if isinstance(saved, list) and saved else None
            ins = _inputs(setter) if setter is not None else []
            link = _key(ins[0].get("link")) if ins else None
            if link is None:
                self.broken(target, name, f"GetNode {exec_id} has no matching connected SetNode")
                return None
            return self.resolve_link(scope, link, want, target, name, hops)
        return _Ref(exec_id, slot)

    def broken(self, target: str, name: str, why: str) -> None:
        self.problems.append(
            warning(
                "UI_CONVERT_LINK_BROKEN",
                f"Node {target}: input {name!r} was left unconnected: {why}.",
                "Reconnect the input in the editor and save again.",
                node_id=target,
                input=name,
            )
        )

    def child(self, scope: _Scope, instance: Mapping[str, Any]) -> _Scope | None:
        """The scope of one subgraph instance, built once (its promoted widget values included)."""
        exec_id = scope.exec_id(instance.get("id"))
        if exec_id in self.children:
            return self.children[exec_id]
        if len(scope.path) >= MAX_SUBGRAPH_DEPTH:
            self.problems.append(
                error(
                    "UI_CONVERT_UNSUPPORTED",
                    f"Subgraph node {exec_id} is nested more than {MAX_SUBGRAPH_DEPTH} levels deep "
                    "(or contains itself).",
                    FIX_EXPORT,
                    node_id=exec_id,
                )
            )
            self.children[exec_id] = None
            return None
        definition = self.subgraphs[str(instance.get("type"))]
        child = _scope(
            definition.get("nodes"),
            definition.get("links"),
            path=(*scope.path, str(instance.get("id"))),
            parent=scope,
            instance=instance,
            definition=definition,
        )
        raw_links = definition.get("links")
        for link in raw_links if isinstance(raw_links, list) else []:
            if isinstance(link, Mapping) and _int(link.get("target_id")) == SUBGRAPH_OUTPUT:
                slot, lid = _int(link.get("target_slot")), _key(link.get("id"))
                if slot is not None and lid is not None:
                    child.output_links[slot] = lid
        child.promoted = self.promoted_values(child, definition, instance, exec_id)
        self.children[exec_id] = child
        return child

    def promoted_values(
        self, child: _Scope, definition: Mapping[str, Any], instance: Mapping[str, Any], exec_id: str
    ) -> dict[str, Any]:
        """Values of the instance's own widgets: one per subgraph input that feeds an inner widget.

        Newer editors keep promoted values on the inner nodes (properties.proxyWidgets) and save an
        empty list here; then the inner widgets' values stand.
        """
        saved = instance.get("widgets_values")
        if not isinstance(saved, list) or not saved:
            return {}
        declared = definition.get("inputs")
        names: list[str] = []
        raw_links = definition.get("links")
        for slot, spec in enumerate(declared if isinstance(declared, list) else []):
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                continue
            for link in raw_links if isinstance(raw_links, list) else []:
                if not isinstance(link, Mapping) or _int(link.get("origin_id")) != SUBGRAPH_INPUT:
                    continue
                if _int(link.get("origin_slot")) != slot:
                    continue
                inner = child.nodes.get(_key(link.get("target_id")) or "")
                index = _int(link.get("target_slot"))
                ins = _inputs(inner) if inner is not None else []
                if index is not None and 0 <= index < len(ins) and ins[index].get("widget"):
                    names.append(spec["name"])
                    break
        if len(names) != len(saved):
            self.problems.append(
                warning(
                    "UI_CONVERT_WIDGET_MISMATCH",
                    f"Subgraph node {exec_id}: {len(saved)} saved widget value(s) for {len(names)} promoted "
                    "input(s); the values inside the subgraph were used instead.",
                    "Check the subgraph's inputs in the converted workflow.",
                    node_id=exec_id,
                )
            )
            return {}
        return dict(zip(names, saved, strict=True))

    def drop_dangling(self) -> None:
        """Like the editor: inputs linked to nodes that are not sent (muted, unknown UI-only) are removed.

        Only a required input is worth a warning: leaving an optional one unconnected (a bypassed
        "Load Image" for text-to-video, say) is how the editor is used to switch features off.
        """
        for exec_id, node in self.output.items():
            for name, value in list(node["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and value[0] not in self.output:
                    del node["inputs"][name]
                    why = self.skipped.get(value[0], "not sent to ComfyUI")
                    self.dropped.append((exec_id, name, f"node {value[0]}, which is {why}"))
        for exec_id, name, source in self.dropped:
            target = self.output.get(exec_id)
            if target is None or name in target["inputs"]:
                continue
            info = self.info.get(target["class_type"])
            spec = input_specs(info).get(name) if isinstance(info, Mapping) else None
            if spec is not None and not spec[1]:
                continue
            self.problems.append(
                warning(
                    "UI_CONVERT_INPUT_DROPPED",
                    f"Node {exec_id}: input {name!r} comes from {source}; it is left unconnected, as in the editor.",
                    "Un-mute or un-bypass the source node, or connect the input to another node.",
                    node_id=exec_id,
                    input=name,
                )
            )


# ---------------------------------------------------------------------------------------------
# Expansion bound: nested subgraphs multiply (10 instances of a subgraph of 10 instances of ... is
# 10^depth nodes from a few kB of JSON). Count first, per definition once, and refuse before expanding.
# ---------------------------------------------------------------------------------------------


def expanded_size(nodes: Any, subgraphs: Mapping[str, Mapping[str, Any]], limit: int = MAX_UI_NODES) -> int:
    """How many nodes the workflow expands to (stops counting past `limit`), following the same depth
    cut as the conversion (an instance deeper than MAX_SUBGRAPH_DEPTH is not expanded). Work is linear
    in the JSON's size times that depth: each (definition, depth) is counted once."""
    memo: dict[tuple[str, int], int] = {}

    def count(items: Any, depth: int) -> int:
        total = 0
        for node in items if isinstance(items, list) else []:
            kind = node.get("type") if isinstance(node, Mapping) else None
            if isinstance(kind, str) and kind in subgraphs and depth < MAX_SUBGRAPH_DEPTH:
                if (kind, depth) not in memo:
                    memo[(kind, depth)] = count(subgraphs[kind].get("nodes"), depth + 1)
                total += memo[(kind, depth)]
            else:
                total += 1
            if total > limit:
                return limit + 1
        return total

    return count(nodes, 0)


def too_large(size: int) -> Finding:
    shown = f"more than {MAX_UI_NODES:,}" if size > MAX_UI_NODES else f"{size:,}"
    return error(
        "LIMIT_EXCEEDED",
        f"The editor workflow expands to {shown} nodes (its subgraphs nested); the limit is {MAX_UI_NODES:,}.",
        "Flatten or shrink the subgraphs, or export with Workflow > Export (API) and send that file.",
    )


def _bypass_input(node: Mapping[str, Any], slot: int, want: Any) -> int:
    """The input a bypassed node passes through to output `slot` (ExecutableNodeDTO's rule)."""
    ins = _inputs(node)
    outs = _outputs(node)
    out_type = outs[slot].get("type") if 0 <= slot < len(outs) else None
    if not ins:
        return -1
    if want in ("*", "", None):
        return slot if 0 <= slot < len(ins) else 0
    if 0 <= slot < len(ins) and _type_ok(ins[slot].get("type"), out_type) and _type_ok(ins[slot].get("type"), want):
        return slot
    exact = next((k for k, i in enumerate(ins) if i.get("type") == want), -1)
    if exact >= 0:
        return exact
    return next(
        (k for k, i in enumerate(ins) if _type_ok(i.get("type"), out_type) and _type_ok(i.get("type"), want)), -1
    )


def _wrap(value: Any) -> Any:
    """Arrays mean links in API format, so the editor wraps array widget values."""
    return {"__value__": value} if isinstance(value, list) else value


def _title(node: Mapping[str, Any], info: Mapping[str, Any], node_type: str) -> str:
    for title in (node.get("title"), info.get("display_name"), node_type):
        if isinstance(title, str) and title:
            return title
    return node_type


def pack_key(info: Mapping[str, Any]) -> str:
    """Which installed pack defines a node: its custom_nodes folder, or `comfy-core` for ComfyUI's own."""
    module = str(info.get("python_module") or "")
    return module.split(".")[1] if module.startswith("custom_nodes.") and "." in module else "comfy-core"


def _same_version(saved: str, installed: str) -> bool:
    """A release version equal, or a commit given in full or abbreviated (7+ hex) on either side."""
    a, b = saved.strip().lower().removeprefix("v"), installed.strip().lower().removeprefix("v")
    if a == b:
        return True
    hexes = re.fullmatch(r"[0-9a-f]{7,40}", a) and re.fullmatch(r"[0-9a-f]{7,40}", b)
    return bool(hexes) and (a.startswith(b) or b.startswith(a))


def shows_progress_text(info: Mapping[str, Any]) -> bool:
    """A node that asks for its own UNIQUE_ID (hidden input) to send text to its box in the editor
    (PromptServer.send_progress_text: GetImageSize's "width: …, height: …"); the editor saves that text
    after the widget values."""
    inputs = info.get("input")
    hidden = inputs.get("hidden") if isinstance(inputs, Mapping) else None
    return isinstance(hidden, Mapping) and "UNIQUE_ID" in hidden.values()


def _display_only(saved: Any, extra: int) -> bool:
    """The surplus saved values are text (what the node displayed), not settings."""
    return isinstance(saved, list) and 0 < extra <= len(saved) and all(isinstance(v, str) for v in saved[-extra:])
