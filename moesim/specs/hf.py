"""Import a model from a Hugging Face ``config.json`` or from Megatron-LM arguments.

``import_model(path)`` reads the file, picks the format, maps its fields to a validated
:class:`~moesim.specs.model.MoEModelSpec` and returns it with the notes that say what moesim
models only approximately. ``moesim model import`` writes it as YAML whose header cites the
file and the architecture; a scenario may name the file directly as ``model: hf:PATH``.

A Hugging Face field moesim does not know is an error (it may change the model's shape);
``ignore`` names fields to skip anyway. Families: ``moesim.specs.hf_families.FAMILIES``.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moesim.errors import SpecError
from moesim.specs import hf_families, megatron_args
from moesim.specs.hf_fields import ConfigFields
from moesim.specs.model import MoEModelSpec

HF_PREFIX = "hf:"
HF_FORMAT = "Hugging Face config.json"

# Fields a moesim model YAML always spells out, defaults or not (the rest only when set).
_ALWAYS = ("name", "num_layers", "hidden_size", "attention", "ffn_hidden_size", "activation",
           "num_experts", "vocab_size", "tied_embeddings")


@dataclass(frozen=True)
class ImportedModel:
    """A model read from another tool's format, with where it came from."""

    spec: MoEModelSpec
    source: str  # the file name
    architecture: str  # the Hugging Face architecture, or "Megatron-LM arguments"
    notes: tuple[str, ...] = ()

    @property
    def format(self) -> str:
        return ("Megatron-LM argument list" if self.architecture == megatron_args.ARCHITECTURE
                else HF_FORMAT)

    def to_yaml(self) -> str:
        """moesim's model YAML, headed by a comment citing the source and the notes."""
        s = self.spec
        mtp = f"; {s.total_params_with_mtp / 1e9:,.2f}B with the MTP modules" if (
            s.num_mtp_layers) else ""
        head = [f"{s.name}: imported by `moesim model import` from {self.source} "
                f"({self.format}, architecture {self.architecture}). moesim counts "
                f"{s.total_params / 1e9:,.2f}B parameters, {s.active_params / 1e9:,.2f}B "
                f"active per token{mtp}."]
        if self.notes:
            head.append("Mapped to the nearest moesim feature, or not modelled:")
        lines = [ln for text in head for ln in textwrap.wrap(text, 96)]
        for note in self.notes:
            lines += textwrap.wrap(note, 96, initial_indent="- ", subsequent_indent="  ")
        comment = "".join(f"# {ln}\n" for ln in lines)
        return comment + yaml.safe_dump(model_yaml_dict(s), sort_keys=False)


def model_yaml_dict(spec: MoEModelSpec) -> dict[str, Any]:
    """The spec as a mapping: the fields every model file spells out, then what differs from
    the defaults, in field order (attention keeps its ``kind``)."""
    full = spec.model_dump()
    changed = spec.model_dump(exclude_defaults=True)
    out = {k: v for k, v in full.items() if k in _ALWAYS or k in changed}
    attention = spec.attention.model_dump(exclude_defaults=True)
    out["attention"] = {"kind": spec.attention.kind, **attention}
    return out


def read_source(path: Path) -> Any:
    """The file's content: a parsed mapping (JSON, YAML) or the text of an argument list."""
    from moesim.specs.loader import is_file, read_yaml

    if not is_file(path):
        raise SpecError(f"file not found: {path}", file=str(path))
    if path.suffix.lower() in (".yaml", ".yml"):
        return read_yaml(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the file: {exc}", file=str(path)) from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}", file=str(path)) from None
    return text


def is_hf_config(data: Any) -> bool:
    """Whether a parsed mapping looks like a Hugging Face config.json."""
    return isinstance(data, dict) and any(
        k in data for k in ("architectures", "model_type", "text_config", "num_hidden_layers"))


def hf_config_hint(data: Any) -> str | None:
    """What to do with a Hugging Face config given where a moesim model file was expected."""
    if not is_hf_config(data):
        return None
    return ("this is a Hugging Face config.json, not a moesim model file: write "
            "'model: hf:PATH' in the scenario, or convert it with 'moesim model import PATH'")


def import_model(path: str | Path, *, name: str | None = None,
                 ignore: Iterable[str] = ()) -> ImportedModel:
    """Read a Hugging Face config.json or Megatron arguments and return moesim's model.

    ``name`` defaults to the model's folder (or file) name. ``ignore`` lists Hugging Face
    fields to skip although moesim does not know them."""
    p = Path(path)
    data = read_source(p)
    notes: list[str] = []
    if isinstance(data, str) or (isinstance(data, list) and all(isinstance(x, str) for x in data)):
        text = data if isinstance(data, str) else " ".join(data)
        args = megatron_args.parse_argument_text(text, str(p))
        fields, arch = _megatron(args, p, notes)
    elif isinstance(data, dict) and "attention" in data and "num_layers" in data:
        raise SpecError("this is already a moesim model file; name it as 'model: PATH'",
                        file=str(p))
    elif is_hf_config(data):
        fields, arch = _hugging_face(data, p, notes, set(ignore))
    elif isinstance(data, dict) and any(megatron_args.normalize(k) in megatron_args.SHAPE_ARGS
                                        for k in data):
        args = {megatron_args.normalize(k): v for k, v in data.items()}
        fields, arch = _megatron(args, p, notes)
    else:
        raise SpecError("cannot tell the format: a Hugging Face config.json has "
                        "'architectures'; Megatron arguments have --num-layers, --hidden-size, "
                        "--num-attention-heads", file=str(p))
    from moesim.specs.loader import validate_as

    spec = validate_as(MoEModelSpec, {"name": name or _default_name(p, data), **fields},
                       file=str(p))
    return ImportedModel(spec, p.name, arch, tuple(notes))


def _megatron(args: dict[str, Any], p: Path, notes: list[str]) -> tuple[dict[str, Any], str]:
    f = ConfigFields(args, str(p), "Megatron", prefix="--")
    out = megatron_args.convert(f, notes)
    unread = f.unread()
    if unread:
        shown = ", ".join(f"--{k}" for k in unread[:6]) + (", ..." if len(unread) > 6 else "")
        notes.append(f"{len(unread)} arguments that do not shape the model were not read "
                     f"({shown})")
    return out, megatron_args.ARCHITECTURE


def _architecture(data: dict[str, Any], p: Path) -> str:
    archs = data.get("architectures")
    supported = ", ".join(sorted(hf_families.FAMILIES))
    if archs is None:
        kind = data.get("model_type")
        if kind in hf_families.MODEL_TYPES:
            return hf_families.MODEL_TYPES[kind]
        raise SpecError(f"architectures is missing and model_type={kind!r} is not one moesim "
                        f"imports; supported architectures: {supported}", file=str(p),
                        field="architectures")
    if not isinstance(archs, list) or not archs or not all(isinstance(a, str) for a in archs):
        raise SpecError(f"architectures={archs!r} must be a list of class names", file=str(p),
                        field="architectures")
    for arch in archs:
        if arch in hf_families.FAMILIES:
            return arch
    raise SpecError(f"architectures={archs!r} is not a family moesim imports; supported: "
                    f"{supported}; write other models as moesim YAML (docs/specs.md)",
                    file=str(p), field="architectures")


def _hugging_face(data: dict[str, Any], p: Path, notes: list[str],
                  ignore: set[str]) -> tuple[dict[str, Any], str]:
    arch = _architecture(data, p)
    top = ConfigFields(data, str(p), arch)
    fields = top
    if isinstance(data.get("text_config"), dict):  # multimodal: the text decoder's fields
        fields = ConfigFields(data["text_config"], str(p), arch, prefix="text_config.")
        top.raw("text_config")
        for key in ("vision_config", "audio_config"):
            if top.has(key):
                notes.append(f"{key}: the {key.split('_')[0]} encoder is not modelled (the "
                             "text decoder only)")
        for key in ("boi_token_index", "eoi_token_index", "image_token_index"):
            top.raw(key)
    out = hf_families.FAMILIES[arch](fields, notes)
    if fields is not top and "tie_word_embeddings" in data:
        out["tied_embeddings"] = top.get_bool("tie_word_embeddings", False)
    for f in (top, fields) if fields is not top else (top,):
        unknown = [k for k in f.unread() if k not in hf_families.IGNORED_FIELDS
                   and f.prefix + k not in ignore and k not in ignore]
        if unknown:
            known = sorted(f.read - hf_families.IGNORED_FIELDS)
            key = unknown[0]
            raise f.error(key, f"is a field moesim does not know for {arch}; if it changes no "
                          f"shape or cost, skip it with 'moesim model import --ignore "
                          f"{f.prefix}{key}' (moesim reads {', '.join(known)})")
    return out, arch


def _default_name(p: Path, data: Any) -> str:
    given = data.get("_name_or_path") if isinstance(data, dict) else None
    if isinstance(given, str) and given.strip("/"):
        raw = given.rstrip("/").rsplit("/", 1)[-1]
    elif p.stem in ("config", "args", "arguments"):
        raw = p.resolve().parent.name or p.stem
    else:
        raw = p.stem
    return re.sub(r"[^a-z0-9._-]+", "-", raw.lower()).strip("-") or "imported-model"
