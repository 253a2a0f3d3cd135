"""A pack node's paths, judged by what its values are, not by what its inputs are called. Pure.

workflows.paths knows the inputs that name a file by a table, by a few names and by /object_info's
upload flags. A pack can call an input anything (`snapshot_path`, `output_folder`, `save_dir`,
`ckpt_file`) and open whatever it holds: one pickle.load of a path a job chose is code in ComfyUI. So
on every node that is not ComfyUI's own (/object_info's `python_module`: a pack's is `custom_nodes.*`;
ComfyUI's are `nodes`, `comfy_extras.*`, `comfy_api_nodes.*`), a string is a path when

- it has the shape of one, wherever it sits in an input (in a list, a `{"__value__": x}`, behind a
  Primitive's link): absolute, `~`, a `..` segment, a drive letter, a `file:` URL;
- it is relative, has a separator and no whitespace, and its first part names something in ComfyUI's
  working directory (`user/default/x`, `custom_nodes/...`; not `1/2` or `and/or`): the handler looks
  (base "entry"); or
- its input's name says path: its last word (snake, camel or kebab case) is path, file, folder, dir,
  directory, filename, ..., or it ends in such a word and "name" (`folder_name`). The last word is the
  head of an English compound: `file_extension` and `file_format` name no file. Then a relative value
  is a path too (`folder: "user"`), and a value fed by another node's output (not a Primitive's
  literal) is refused: what it will be can't be judged.

A path must land inside ComfyUI's input, output or temp directory. The node may resolve a relative one
against ComfyUI's working directory (where `user` is ComfyUI's user directory) or join it onto one of
those directories: the handler resolves it against each, symlinks followed (handler.generate.path_facts,
base "cwd"), and it must land inside every time ("output/x" does; "x", "user" or "." do not).

Not judged here: ComfyUI's own nodes (workflows.paths judges their file inputs precisely); a combo's
value that is one of the node's own listed options; a multiline text box whose name does not say path
(prompts such as "/imagine a cat"), like any other text with a "/" that is not path-shaped ("a cat /
dog", "1/2"); an empty string; `filename_prefix` (scoped to the job's folder by workflows.patch); a
string built inside the graph and fed to an input whose name does not say path; a class the deployment
trusts with paths (ALLOW_UNSAFE_NODES lists it, or is `*`: the node policy off, as the kernel layer's
own tests run). The kernel's confinement of ComfyUI (handler.confine) is the layer for what no check
foresees.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from workflows.analysis import combo_choices, input_specs, spec_options
from workflows.paths import (
    FILE_INPUTS,
    OUTPUT_NAMING,
    Base,
    FileRef,
    declared_file_inputs,
    file_inputs,
    is_link,
    linked_literal,
    literal,
)
from workflows.vetting import is_core as core_definition

# Words of an input's name that say it holds a path (snake_case, camelCase, kebab-case are split first).
PATH_WORDS = frozenset(
    {
        "path",
        "paths",
        "filepath",
        "filepaths",
        "pathname",
        "file",
        "files",
        "filename",
        "filenames",
        "folder",
        "folders",
        "dir",
        "dirs",
        "dirname",
        "dirpath",
        "directory",
        "directories",
    }
)
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SHAPE = re.compile(r"^(?:[/\\~]|[A-Za-z]:[/\\]|file:)", re.IGNORECASE)
# A relative value with a separator and no whitespace ("user/default/x", but also "1/2"): a path when its
# first part names something in ComfyUI's working directory (the handler looks: base "entry").
# A URL or data URI ("https://...", "data:image/png;base64,...") is not one: a pack may fetch or decode it.
_RELATIVE = re.compile(r"^(?![A-Za-z][A-Za-z0-9+.-]*:)[^\s\\/]+[\\/]\S*$")


def is_core(object_info: Mapping[str, Any] | None, class_type: str) -> bool | None:
    """True for ComfyUI's own node classes (workflows.vetting.is_core), False for a pack's (or any class when
    /object_info is not at hand: judged, to be safe), None for a class ComfyUI does not have (it refuses
    the whole prompt)."""
    if object_info is None:
        return False
    info = object_info.get(class_type)
    return core_definition(info) if isinstance(info, Mapping) else None


def says_path(name: str) -> bool:
    """Whether an input's name says it holds a path: `snapshot_path`, `outputFolder`, `save-dir`, `ckpt_file`,
    `folder_name`; not `file_extension` or `file_format` (the last word is the head of the name)."""
    words = [w.lower() for w in _WORDS.findall(name)]
    if words and words[-1] in ("name", "names") and len(words) > 1:
        words.pop()
    return bool(words) and words[-1] in PATH_WORDS


def looks_like_path(value: str) -> bool:
    """A string with the shape of a filesystem path: absolute, `~`, a drive letter, `file:`, a `..` segment."""
    text = value.strip().strip('"')
    return bool(_SHAPE.match(text)) or ".." in re.split(r"[\\/]+", text)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, keys aside (iterative: a job's nesting can't exhaust the stack)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def value_refs(
    workflow: Mapping[str, Any], object_info: Mapping[str, Any] | None, trusted: Collection[str] = ()
) -> Iterator[FileRef]:
    """The path-like values of every pack node (see the module's docstring), as references with base "cwd"
    and kind "value" (workflows.paths.path_findings judges them with the handler's facts). `trusted`: the
    classes the deployment trusts with paths (ALLOW_UNSAFE_NODES; "*": every class), left to the kernel."""
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        class_type = str(node.get("class_type"))
        if is_core(object_info, class_type) is not False or "*" in trusted or class_type in trusted:
            continue
        info = (object_info or {}).get(class_type)
        specs = input_specs(info) if isinstance(info, Mapping) else {}
        precise = {*FILE_INPUTS.get(class_type, {}), *declared_file_inputs(object_info, class_type), *OUTPUT_NAMING}
        for name, raw in node["inputs"].items():
            if name in precise:
                continue
            named, value = says_path(str(name)), literal(raw)
            if is_link(value):
                value = linked_literal(workflow, value)
                if is_link(value):  # another node's output: judged only where the name says path
                    if named:
                        yield FileRef(str(node_id), class_type, name, str(raw)[:120], "cwd", "value", "", literal=False)
                    continue
            spec = specs.get(name, (None, False))[0]
            choices = combo_choices(spec) or []
            text_box = bool(spec_options(spec).get("multiline"))
            for text in _strings(value):
                if not text.strip() or text in choices:
                    continue
                if named or (not text_box and looks_like_path(text)):
                    base: Base = "cwd"
                elif not text_box and _RELATIVE.match(text):
                    base = "entry"
                else:
                    continue
                for form in dict.fromkeys((text, text.strip().strip('"'))):  # as given, and as VHS-like packs strip it
                    yield FileRef(str(node_id), class_type, name, text, base, "value", form)


def judged_refs(
    workflow: Mapping[str, Any], object_info: Mapping[str, Any] | None, trusted: Collection[str] = ()
) -> Iterator[FileRef]:
    """Every reference the policy judges: the file inputs (workflows.paths) and the packs' path-like values."""
    yield from file_inputs(workflow, object_info)
    yield from value_refs(workflow, object_info, trusted)
