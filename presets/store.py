"""Preset files: the user's presets next to the shipped ones, loading with migration,
atomic saving, listing, comparing, and the JSON Schema.

Where presets live
    user     ``user_dir()`` = ``$XDG_CONFIG_HOME/auralis-rt/presets`` (platformdirs;
             ``~/.config/auralis-rt/presets`` by default).  Created on the first save.
    shipped  the JSON files inside this package (read-only).
A name (``warm``) is looked up in the user directory first, so a user preset named like
a shipped one shadows it (``list_presets`` says so); anything else is a path.

Parameters are checked against the graph's node types only when the caller hands them
in (``node_types=graph.nodes.NODE_TYPES``): presets hold data models and sit below graph
in the import order, so nothing here imports graph.

Older schema versions (presets/migrations.py) are migrated on load.  A file in the user
preset directory is then rewritten: the original is kept next to it as
``NAME.json.vN.bak`` (never overwriting an earlier backup: ``NAME.json.vN.1.bak`` ...)
and the migrated file replaces it atomically.  Any other file -- a shipped preset, or a
path elsewhere -- is migrated in memory only: we do not rewrite files we do not own
without being asked (a shipped file belongs to the installation, a file given by path
may be under version control or shared with an older auralis-rt; a symlink in the user
directory points at such a file);
``open_preset(..., write_migrated=True)`` (``auralis-rt presets validate FILE
--migrate``) rewrites one explicitly, with the same backup.

Saving is atomic (a temporary file in the same directory, fsync, ``os.replace``): a
preset file is either the old one or the new one, never half-written, and a failed
save leaves no temporary file behind.  Floats are written with Python's shortest
round-trip representation, so every value reads back exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import platformdirs

from presets.migrations import SchemaVersionError, migrate
from presets.models import (NAME_PATTERN, SCHEMA_VERSION, SHIPPED_DIR, NodeConfig, Preset, PresetError, canonical_value,
                            is_switch, parse_preset)

APP_NAME = "auralis-rt"
_NAME = re.compile(NAME_PATTERN)
NAME_RULE = "1-32 lowercase letters, digits or _, starting with a letter"


def user_dir() -> Path:
    """The user's preset directory (may not exist yet); honours $XDG_CONFIG_HOME."""
    return platformdirs.user_config_path(APP_NAME) / "presets"


def _is_name(text: str) -> bool:
    return _NAME.fullmatch(text) is not None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _is_name(name):
        raise PresetError(f"preset name {name!r} must be {NAME_RULE}")
    return name


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _source_of(path: Path) -> str:
    parent = path.parent
    if _same_dir(parent, user_dir()):
        return "user"
    if _same_dir(parent, SHIPPED_DIR):
        return "shipped"
    return "file"


# ---- listing and finding ------------------------------------------------------------------------


@dataclass(frozen=True)
class PresetEntry:
    """One preset file as ``list_presets`` sees it.

    ``source``: "user" or "shipped".  ``shadows_shipped``: a user preset with the name
    of a shipped one (loading the name gives the user's).  ``shadowed``: a shipped
    preset hidden that way.  ``schema_version``: as stored in the file (older ones are
    migrated on load).  ``error``: why the file cannot be loaded (one line), or None.
    """

    name: str
    path: Path
    source: str
    description: str
    shadows_shipped: bool
    shadowed: bool = False
    schema_version: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "source": self.source, "description": self.description,
                "shadows_shipped": self.shadows_shipped, "shadowed": self.shadowed,
                "schema_version": self.schema_version, "error": self.error}


def _files(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.glob("*.json") if p.is_file())
    except OSError:
        return []


def _peek(path: Path, node_types: Mapping[str, Any] | None) -> tuple[str, int | None, str | None]:
    """(description, schema_version, error) without writing anything."""
    try:
        data = _read_json(path)
    except PresetError as exc:
        return "", None, str(exc).splitlines()[0]
    description = data.get("description", "") if isinstance(data, dict) else ""
    version = data.get("schema_version") if isinstance(data, dict) else None
    version = version if isinstance(version, int) and not isinstance(version, bool) else None
    if not _is_name(path.stem):
        return str(description), version, f"preset {path.name}: the file name is not a preset name ({NAME_RULE})"
    try:
        parse_preset(data, path.name, node_types)
    except PresetError as exc:
        lines = str(exc).splitlines()
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        return str(description), version, lines[0] + more
    return str(description), version, None


def list_presets(node_types: Mapping[str, Any] | None = None) -> list[PresetEntry]:
    """User and shipped presets, sorted by name (a user preset before the shipped one it
    shadows).  Every file is validated in memory (against ``node_types`` when given);
    one that cannot be loaded is listed with its ``error``.  Nothing is written."""
    shipped = {p.stem: p for p in _files(SHIPPED_DIR)}
    user = {p.stem: p for p in _files(user_dir())}
    entries = []
    for source, files in (("user", user), ("shipped", shipped)):
        for name, path in files.items():
            description, version, error = _peek(path, node_types)
            entries.append(PresetEntry(name, path, source, description,
                                       shadows_shipped=source == "user" and name in shipped,
                                       shadowed=source == "shipped" and name in user,
                                       schema_version=version, error=error))
    entries.sort(key=lambda e: (e.name, e.source != "user"))
    return entries


def find_preset(name_or_path: str | os.PathLike, *, search_dirs: Iterable[Path] = ()) -> Path:
    """The file of a preset name (``search_dirs``, then the user directory, then the
    shipped presets) or a path as given.  PresetError (one line) if there is none."""
    text = os.fspath(name_or_path)
    if _is_name(text):
        for directory in (*search_dirs, user_dir(), SHIPPED_DIR):
            candidate = Path(directory) / f"{text}.json"
            if candidate.is_file():
                return candidate
        user_names = sorted(p.stem for p in _files(user_dir()) if _is_name(p.stem))
        shipped = sorted(p.stem for p in _files(SHIPPED_DIR))
        raise PresetError(f"preset {text}: no such preset (user: {', '.join(user_names) or 'none'}; "
                          f"shipped: {', '.join(shipped)})")
    path = Path(text)
    if not path.is_file():
        raise PresetError(f"preset {path}: no such file" if not path.is_dir() else f"preset {path}: is a directory")
    return path


# ---- reading, migrating -------------------------------------------------------------------------


def _reject_constant(token: str):
    raise ValueError(f"{token} is not allowed in a preset (use a finite number)")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PresetError(f"preset {path}: no such file") from None
    except OSError as exc:
        raise PresetError(f"preset {path}: cannot be read ({exc.strerror or exc})") from None


def _decode(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PresetError(f"preset {source}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PresetError(f"preset {source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:
        raise PresetError(f"preset {source}: {exc}") from None


def _read_json(path: Path) -> Any:
    return _decode(_read_bytes(path), path.name)


@dataclass(frozen=True)
class Loaded:
    """What ``open_preset`` found: the preset (current schema), its file, where that file
    lives ("user", "shipped" or "file"), the schema version the file had, and, when the
    file was migrated on disk, where the original went (``backup``).  ``note``: one line
    for the user when the file was migrated (in memory or on disk) or could not be
    rewritten, else None."""

    preset: Preset
    path: Path
    source: str
    from_version: int
    backup: Path | None = None
    note: str | None = None

    @property
    def migrated(self) -> bool:
        return self.from_version != SCHEMA_VERSION


def open_preset(name_or_path: str | os.PathLike, node_types: Mapping[str, Any] | None = None, *,
                search_dirs: Iterable[Path] = (), write_migrated: bool | None = None) -> Loaded:
    """Find, read, migrate and validate a preset.

    ``write_migrated``: None (default) rewrites a migrated file only when it is in the
    user preset directory (and not a symlink); True rewrites any file (explicit ``--migrate``); False never
    writes.  A file is rewritten only after the migrated data validated, so an invalid
    file is never touched.  When the automatic rewrite fails (read-only directory), the
    preset is still returned, with a ``note`` saying so; an explicit one raises."""
    path = find_preset(name_or_path, search_dirs=search_dirs)
    source = path.name
    raw = _read_bytes(path)
    data = _decode(raw, source)
    try:
        current, from_version = migrate(data)
    except SchemaVersionError as exc:
        raise PresetError(f"preset {source}: {exc}") from None
    preset = parse_preset(current, source, node_types)
    where = _source_of(path)
    if from_version == SCHEMA_VERSION:
        return Loaded(preset, path, where, from_version)
    write = (where == "user" and not path.is_symlink()) if write_migrated is None else write_migrated
    if not write:
        why = ("shipped presets are" if where == "shipped" else "symlinks are" if where == "user"
               else "files outside the user preset directory are")
        return Loaded(preset, path, where, from_version,
                      note=f"preset {source}: migrated from schema {from_version} to {SCHEMA_VERSION} in memory "
                           f"({why} not rewritten; `auralis-rt presets validate {path} --migrate` does it)")
    try:
        backup = _write_migrated(path.resolve(), raw, current, from_version)  # a symlink's target, explicitly
    except OSError as exc:
        message = (f"preset {source}: migrated from schema {from_version} to {SCHEMA_VERSION} in memory; "
                   f"could not rewrite {path} ({exc.strerror or exc})")
        if write_migrated:
            raise PresetError(message) from None
        return Loaded(preset, path, where, from_version, note=message)
    return Loaded(preset, path, where, from_version, backup=backup,
                  note=f"preset {source}: migrated from schema {from_version} to {SCHEMA_VERSION}; "
                       f"the original is kept as {backup.name}")


def load(name_or_path: str | os.PathLike, node_types: Mapping[str, Any] | None = None, *,
         search_dirs: Iterable[Path] = ()) -> Preset:
    """The preset of a name or path, migrated to the current schema (see ``open_preset``)."""
    return open_preset(name_or_path, node_types, search_dirs=search_dirs).preset


def _write_migrated(path: Path, original: bytes, data: dict[str, Any], from_version: int) -> Path:
    """Keep ``original`` (the exact bytes read) in a fresh backup file, then replace
    ``path`` atomically with ``data``.  Returns the backup's path."""
    backup = _exclusive_copy(path, original, from_version)
    try:
        _atomic_write(path, _dumps(data), overwrite=True)
    except BaseException:
        # The original is still in place: the backup would only be a confusing duplicate.
        with contextlib.suppress(OSError):
            backup.unlink()
        raise
    return backup


def _exclusive_copy(path: Path, content: bytes, version: int) -> Path:
    for k in range(0, 1000):
        candidate = path.with_name(f"{path.name}.v{version}.bak" if k == 0 else f"{path.name}.v{version}.{k}.bak")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _file_mode(path))
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                candidate.unlink()
            raise
        return candidate
    raise FileExistsError(f"no free backup name next to {path} (1000 backups exist)")


# ---- writing ------------------------------------------------------------------------------------


def _umask() -> int:
    """The process umask without changing it (os.umask would race with other threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _file_mode(existing: Path | None = None) -> int:
    if existing is not None:
        with contextlib.suppress(OSError):
            return existing.stat().st_mode & 0o777
    return 0o666 & ~_umask()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, content: bytes, *, overwrite: bool) -> None:
    """Write ``content`` to a temporary file next to ``path`` and move it into place.
    ``overwrite=False`` fails with FileExistsError if ``path`` exists (checked
    atomically where the filesystem has hard links).  The temporary file never stays."""
    mode = _file_mode(path if path.exists() else None)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the name exists, with no window for a race
            except FileExistsError:
                raise
            except OSError:  # no hard links here (some FUSE/FAT mounts): check, then rename
                if path.exists():
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
            else:
                tmp.unlink()
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _dumps(data: Any) -> bytes:
    # repr-based floats: the shortest text that reads back as the same double.
    return (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def preset_data(preset: Preset, name: str | None = None) -> dict[str, Any]:
    """The JSON object ``save`` writes for ``preset`` (renamed to ``name`` if given)."""
    data = preset.model_dump(mode="json")
    data["schema_version"] = SCHEMA_VERSION
    if name is not None:
        data["name"] = name
    return data


def save(preset: Preset, name: str | None = None, *, overwrite: bool = False, directory: Path | None = None,
         node_types: Mapping[str, Any] | None = None) -> Path:
    """Write ``preset`` as ``NAME.json`` into the user preset directory (created if
    needed) or ``directory``; the file's ``name`` field becomes NAME.  Returns the path.

    Refuses (PresetError, one line) a NAME that is not a preset name, an existing file
    unless ``overwrite=True``, and a preset that does not validate (against
    ``node_types`` when given).  The write is atomic; on failure nothing changes."""
    name = _check_name(preset.name if name is None else name)
    data = preset_data(preset, name)
    parse_preset(data, f"{name}.json", node_types)  # what we write must load back
    try:
        content = _dumps(data)
    except ValueError as exc:  # a non-finite float reached a Preset built without validation
        raise PresetError(f"preset {name}: {exc}") from None
    target_dir = Path(directory) if directory is not None else user_dir()
    path = target_dir / f"{name}.json"
    exists = (f"preset {name}: {path} already exists; save with overwrite to replace it "
              f"(the shipped preset of that name is not affected)" if (SHIPPED_DIR / f"{name}.json").is_file()
              else f"preset {name}: {path} already exists; save with overwrite to replace it")
    if not overwrite and path.exists():
        raise PresetError(exists)
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, content, overwrite=overwrite)
    except FileExistsError:
        raise PresetError(exists) from None
    except OSError as exc:
        raise PresetError(f"preset {name}: cannot write {path} ({exc.strerror or exc})") from None
    return path


def with_values(preset: Preset, values: Mapping[str, Any], node_types: Mapping[str, Any]) -> Preset:
    """``preset`` with values in the graph's publish-key form applied: ``"node.param"``,
    ``"node.bypass"``, ``"intensity"`` -- e.g. what a running chain holds, to save it.
    Values may be as the graph keeps them (floats, enumeration codes): they are stored
    the preset way (names, booleans, whole numbers as ints).  The result is validated;
    PresetError names the first unknown node or bad value."""
    data = preset.model_dump(mode="python")
    nodes = {n["name"]: n for n in data["chain"]}
    for key, value in values.items():
        if key == "intensity":
            data["intensity"] = value
            continue
        node_name, dot, param = key.partition(".")
        if not dot or node_name not in nodes:
            raise PresetError(f"preset {preset.name}: {key!r} names no node of the chain "
                              f"({', '.join(nodes)}; keys are node.param, node.bypass or intensity)")
        if param == "bypass":
            if isinstance(value, str) or value not in (0, 1):
                raise PresetError(f"preset {preset.name}: {key} = {value!r} must be true/false (or 1/0)")
            nodes[node_name]["bypass"] = bool(value)
            continue
        node_type = node_types.get(nodes[node_name]["type"])
        spec = None if node_type is None else next(
            (s for s in (*node_type.params, *node_type.options) if s.name == param), None)
        nodes[node_name]["params"][param] = value if spec is None else canonical_value(spec, value)
    return parse_preset(data, f"{preset.name} (with new values)", node_types)


# ---- comparing ----------------------------------------------------------------------------------

_TOP_FIELDS = ("name", "description", "adaptive", "eq_target", "eq_strength", "reference_lufs", "intensity")


def _param_default(node_types: Mapping[str, Any] | None, node: NodeConfig, key: str) -> Any:
    if node_types is None or node.type not in node_types:
        return None
    node_type = node_types[node.type]
    for spec in (*node_type.params, *node_type.options):
        if spec.name == key:
            if spec.choices is not None or not isinstance(spec.default, (int, float)):
                return spec.default
            return bool(spec.default) if is_switch(spec) else spec.default
    return None


def _same(x: Any, y: Any) -> bool:
    # 1 and 1.0 are the same setting; True and 1 too (a v1-style switch).
    if type(x) is type(y) or (isinstance(x, (int, float)) and isinstance(y, (int, float))):
        return x == y
    return False


def diff(a: Preset, b: Preset, node_types: Mapping[str, Any] | None = None) -> list[tuple[str, Any, Any]]:
    """What differs from ``a`` to ``b``, as ``(key, value in a, value in b)``:

    - top-level fields and targets: ``("target.integrated_lufs", -14.0, -13.0)``;
    - parameters of nodes present in both (matched by name): ``("comp.threshold_db",
      -24.0, -18.0)``; a parameter stored on one side only has None on the other (or,
      with ``node_types``, its default, and no entry when that equals the other side);
    - ``("comp.bypass", False, True)``, ``("comp.type", "compressor", "limiter")``;
    - a node on one side only: ``("comp", "compressor", None)`` (its type, None);
    - ``("chain", [names in a], [names in b])`` when the common nodes are in another order.

    The schema version is not compared (both are current in memory)."""
    out: list[tuple[str, Any, Any]] = []
    for key in _TOP_FIELDS:
        va, vb = getattr(a, key), getattr(b, key)
        if not _same(va, vb):
            out.append((key, va, vb))
    for key in ("integrated_lufs", "ceiling_dbtp"):
        va, vb = getattr(a.target, key), getattr(b.target, key)
        if not _same(va, vb):
            out.append((f"target.{key}", va, vb))
    nodes_a = {n.name: n for n in a.chain}
    nodes_b = {n.name: n for n in b.chain}
    for node in a.chain:
        other = nodes_b.get(node.name)
        if other is None:
            out.append((node.name, node.type, None))
            continue
        if node.type != other.type:
            out.append((f"{node.name}.type", node.type, other.type))
            continue
        for key in list(node.params) + [k for k in other.params if k not in node.params]:
            va = node.params.get(key, _param_default(node_types, node, key))
            vb = other.params.get(key, _param_default(node_types, other, key))
            if not _same(va, vb):
                out.append((f"{node.name}.{key}", va, vb))
        if node.bypass != other.bypass:
            out.append((f"{node.name}.bypass", node.bypass, other.bypass))
    for node in b.chain:
        if node.name not in nodes_a:
            out.append((node.name, None, node.type))
    order_a = [n.name for n in a.chain if n.name in nodes_b]
    order_b = [n.name for n in b.chain if n.name in nodes_a]
    if order_a != order_b:
        out.append(("chain", [n.name for n in a.chain], [n.name for n in b.chain]))
    return out


# ---- JSON Schema --------------------------------------------------------------------------------


def _param_schema(spec: Any, option: bool) -> dict[str, Any]:
    notes = [spec.doc] if spec.doc else []
    if option:
        notes.append("creation option: fixed while the node runs")
    if spec.choices is not None:
        out: dict[str, Any] = {"enum": list(spec.choices), "default": spec.default}
    elif is_switch(spec):
        out = {"type": "boolean", "default": bool(spec.default)}
    else:
        out = {"type": "integer" if spec.integer else "number", "minimum": spec.lo, "maximum": spec.hi,
               "default": spec.default}
        if spec.unit:
            out["unit"] = spec.unit
        if spec.below_nyquist:
            notes.append("and below half the sample rate")
    if notes:
        out["description"] = "; ".join(notes)
    return out


def schema(node_types: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the current preset format, from the pydantic
    model: ranges as minimum/maximum, units as ``unit``.  With ``node_types`` the chain's
    node types and each one's parameters (range, unit, default, names of enumerations,
    switches as booleans) are spelled out too."""
    out = Preset.model_json_schema()
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = f"auralis-rt preset (schema_version {SCHEMA_VERSION})"
    if node_types is None:
        return out
    defs = out.setdefault("$defs", {})
    node_def = defs["NodeConfig"]
    node_def["properties"]["type"] = {"enum": sorted(node_types), "title": "Type"}
    rules = []
    for type_name in sorted(node_types):
        node_type = node_types[type_name]
        props = {spec.name: _param_schema(spec, False) for spec in node_type.params}
        props.update({spec.name: _param_schema(spec, True) for spec in node_type.options})
        key = f"params_{type_name}"
        defs[key] = {"type": "object", "properties": props, "additionalProperties": False,
                     "description": node_type.doc or type_name}
        rules.append({"if": {"properties": {"type": {"const": type_name}}},
                      "then": {"properties": {"params": {"$ref": f"#/$defs/{key}"}}}})
    node_def["allOf"] = rules
    return out


__all__ = ["APP_NAME", "Loaded", "PresetEntry", "diff", "find_preset", "list_presets", "load", "open_preset",
           "preset_data", "save", "schema", "user_dir", "with_values"]
