"""User presets: find/list/shadowing, exact save and reload, atomic writes, diff, schema
migration with backups, refusal of newer files and invalid values, the JSON Schema, and
`auralis-rt presets ...`.  XDG_CONFIG_HOME points into tmp_path in every test."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import graph
from engine.cli import main
from graph.nodes import NODE_TYPES
from presets import SCHEMA_VERSION, PresetError, load_preset, parse_preset, store
from presets.migrations import V1_ENUM_CODES, V1_FILTER_TYPES, V1_SWITCHES
from presets.models import SHIPPED_DIR

FIXTURES = Path(__file__).parent / "fixtures"
V1_CODES = FIXTURES / "v1_codes.json"  # schema 1, enumerations as integer codes, switches as 0/1
V1_WARM = FIXTURES / "v1_warm.json"    # the shipped warm preset as schema 1 had it
V3_FUTURE = FIXTURES / "v3_future.json"

graph.eq_node_type(3)  # the v1_codes fixture has an eq3 node


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def udir():
    d = store.user_dir()
    d.mkdir(parents=True)
    return d


def warm():
    return load_preset("warm", NODE_TYPES)


def edited(preset, **changes):
    """A copy of ``preset`` with ``node.param`` (or top-level / ``target.x``) values changed, validated."""
    data = preset.model_dump(mode="json")
    for key, value in changes.items():
        node, _, param = key.partition("__")
        if node == "target":
            data["target"][param] = value
        elif not param:
            data[node] = value
        else:
            next(n for n in data["chain"] if n["name"] == node)["params"][param] = value
    return parse_preset(data, "test", NODE_TYPES)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# ---- where presets live, listing, finding --------------------------------------------------------

def test_user_dir_is_under_xdg_config_home(config_home):
    assert store.user_dir() == config_home / "auralis-rt" / "presets"


def test_list_puts_user_presets_next_to_shipped_ones_and_says_what_shadows_what(udir):
    store.save(edited(warm(), comp__threshold_db=-18.0))             # user "warm" shadows the shipped one
    store.save(edited(warm(), name="mine", intensity=0.5))
    (udir / "broken.json").write_text("{ not json")
    entries = store.list_presets(NODE_TYPES)
    shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))
    assert [e.name for e in entries] == sorted(shipped + ["warm", "mine", "broken"])
    by_key = {(e.name, e.source): e for e in entries}
    assert [e.source for e in entries if e.name == "warm"] == ["user", "shipped"]
    assert by_key["warm", "user"].shadows_shipped and not by_key["warm", "user"].shadowed
    assert by_key["warm", "shipped"].shadowed and not by_key["warm", "shipped"].shadows_shipped
    assert not by_key["mine", "user"].shadows_shipped
    assert by_key["broken", "user"].error.startswith("preset broken.json: not valid JSON (line 1")
    assert all(e.error is None for e in entries if e.name != "broken")
    # Loading the name gives the user's preset.
    assert store.find_preset("warm") == udir / "warm.json"
    assert store.load("warm", NODE_TYPES).node("comp").params["threshold_db"] == -18.0
    assert load_preset("adaptive", NODE_TYPES).name == "adaptive"  # shipped still found


def test_find_preset_takes_paths_as_they_are_and_names_what_exists(udir, tmp_path):
    path = tmp_path / "elsewhere.json"
    shutil.copy(SHIPPED_DIR / "gentle.json", path)
    assert store.find_preset(str(path)) == path
    store.save(warm(), "mine")
    with pytest.raises(PresetError) as e:
        store.find_preset("nosuch")
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("preset nosuch: no such preset (user: mine; shipped: adaptive, bright,")
    with pytest.raises(PresetError, match=r"^preset .*missing\.json: no such file$"):
        store.find_preset(tmp_path / "missing.json")


def test_list_flags_a_user_file_whose_name_cannot_be_loaded(udir):
    shutil.copy(SHIPPED_DIR / "warm.json", udir / "My Warm.json")
    entry = next(e for e in store.list_presets(NODE_TYPES) if e.name == "My Warm")
    assert "the file name is not a preset name" in entry.error


# ---- saving -------------------------------------------------------------------------------------

def test_save_and_reload_reproduces_every_value_exactly(udir, rng):
    bands = {f"band_{i:02d}_db": float(v) for i, v in enumerate(rng.uniform(-11.9, 11.9, 25), 1)}
    preset = edited(warm(), input__gain_db=0.1, comp__threshold_db=-23.456789, loudness__gain_db=1e-7,
                    comp__ratio=1.0 + 1e-12, width__width_2=2.0 / 3.0, intensity=0.1 + 0.2, eq_strength=1.0 / 3.0,
                    target__integrated_lufs=-14.000000000000002, target__ceiling_dbtp=-0.1,
                    **{f"eq__{k}": v for k, v in bands.items()})
    path = store.save(preset, "exact")
    assert path == udir / "exact.json"
    back = store.load("exact", NODE_TYPES)
    assert back.name == "exact"
    want = preset.model_dump()
    want["name"] = "exact"
    assert back.model_dump() == want
    for node in preset.chain:  # types too: an int stays an int, a switch a bool
        for key, value in node.params.items():
            got = back.node(node.name).params[key]
            assert type(got) is type(value) and got == value, (node.name, key, value, got)
    assert back.node("eq").params == bands
    text = path.read_text()
    assert '"gain_db": 0.1\n' in text and '"threshold_db": -23.456789,' in text and "1e-07" in text
    assert leftovers(udir) == []


def chain_executor(preset):
    from graph import Executor, Graph, Node

    nodes = [Node(c.type, c.name, **c.params, bypass=c.bypass) for c in preset.chain]
    return Executor(Graph(*nodes), 2, 48000.0, max_block=256, intensity=preset.intensity), nodes


def test_a_running_chain_saved_and_reloaded_sounds_and_reads_the_same(udir, rng):
    """The REPL's `preset save`: values as the graph holds them (floats, enumeration codes)
    become a preset; reloading it builds a chain with every value and the output identical."""
    executor, nodes = chain_executor(warm())
    executor.publish({"comp.threshold_db": -18.123456789, "comp.link": "mean", "comp.auto_makeup": 1,
                      "width.bypass": True, "width.width_3": 1.0 / 3.0, "limiter.auto_release": 0,
                      "eq.band_07_db": -2.2, "input.gain_db": 0.1})
    executor.collect()
    running = {f"{n.name}.{k}": v for n in nodes for k, v in {**n.values, **n.options}.items()}
    saved = store.with_values(warm(), running, NODE_TYPES)
    assert saved.node("comp").params["link"] == "mean" and saved.node("comp").params["auto_makeup"] is True
    assert saved.node("width").params["bands"] == 3 and saved.node("width").bypass is True
    store.save(saved, "session")
    reloaded = store.load("session", NODE_TYPES)
    again, again_nodes = chain_executor(reloaded)
    assert {f"{n.name}.{k}": v for n in again_nodes for k, v in {**n.values, **n.options}.items()} == running
    signal = (0.3 * rng.standard_normal((2, 4800))).astype(np.float32)
    fresh, _ = chain_executor(saved)
    np.testing.assert_array_equal(again.process(signal.copy()), fresh.process(signal.copy()))
    with pytest.raises(PresetError, match=r"^preset warm: 'nope.gain_db' names no node of the chain"):
        store.with_values(warm(), {"nope.gain_db": 1.0}, NODE_TYPES)
    with pytest.raises(PresetError, match=r"chain\[2\]\.params\.ratio = 0\.5 is outside"):
        store.with_values(warm(), {"comp.ratio": 0.5}, NODE_TYPES)


def test_save_refuses_to_overwrite_an_existing_user_preset_unless_asked(udir):
    first = store.save(edited(warm(), comp__ratio=3.0), "mine")
    before = first.read_bytes()
    with pytest.raises(PresetError) as e:
        store.save(edited(warm(), comp__ratio=4.0), "mine")
    assert str(e.value) == f"preset mine: {first} already exists; save with overwrite to replace it"
    assert first.read_bytes() == before
    store.save(edited(warm(), comp__ratio=4.0), "mine", overwrite=True)
    assert store.load("mine").node("comp").params["ratio"] == 4.0
    # Saving under a shipped name is allowed (it shadows); a second time needs overwrite too.
    store.save(warm())
    with pytest.raises(PresetError, match="the shipped preset of that name is not affected"):
        store.save(warm())
    assert leftovers(udir) == []


@pytest.mark.parametrize("name", ["My Preset", "../evil", "", "Warm", "x" * 33, "1st"])
def test_save_refuses_names_that_are_not_preset_names(name, config_home):
    with pytest.raises(PresetError, match=r"^preset name .* must be 1-32 lowercase letters, digits or _, starting"):
        store.save(warm(), name)
    assert not config_home.exists()


def test_save_into_another_directory(tmp_path):
    path = store.save(warm(), "elsewhere", directory=tmp_path / "sub")
    assert path == tmp_path / "sub" / "elsewhere.json"
    assert store.load(path, NODE_TYPES).model_dump() == dict(warm().model_dump(), name="elsewhere")
    assert not store.user_dir().exists()


def test_a_failed_save_leaves_no_temporary_file_and_the_old_preset_intact(udir, monkeypatch):
    # A real failure after the temporary file was written: the target name is a directory.
    (udir / "blocked.json").mkdir()
    with pytest.raises(PresetError, match=r"^preset blocked: cannot write .*blocked\.json"):
        store.save(warm(), "blocked", overwrite=True)
    assert leftovers(udir) == []
    # A full disk while replacing an existing preset: the old file stays as it was.
    old = store.save(edited(warm(), comp__ratio=3.0), "mine")
    before = old.read_bytes()

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(PresetError) as e:
        store.save(edited(warm(), comp__ratio=5.0), "mine", overwrite=True)
    assert str(e.value) == f"preset mine: cannot write {old} (No space left on device)"
    assert old.read_bytes() == before
    assert leftovers(udir) == []


def test_save_validates_against_the_node_types(udir):
    data = warm().model_dump()
    data["chain"][2]["params"]["threshold_db"] = 40.0
    unchecked = parse_preset(data, "x")  # no node types: the model alone cannot know the range
    with pytest.raises(PresetError, match=r"^preset bad\.json: chain\[2\]\.params\.threshold_db = 40\.0 is outside"):
        store.save(unchecked, "bad", node_types=NODE_TYPES)
    assert list(udir.iterdir()) == []


# ---- diff ---------------------------------------------------------------------------------------

def test_diff_names_every_change():
    a = warm()
    b_data = edited(a, comp__threshold_db=-18.0, target__integrated_lufs=-12.0, name="warmer").model_dump()
    nodes = {n["name"]: n for n in b_data["chain"]}
    nodes["width"]["bypass"] = True
    del nodes["limiter"]["params"]["release_ms"]          # a stored value on one side only
    nodes["input"]["params"]["gain_db"] = 0               # int 0 == 0.0: the same setting
    b_data["chain"] = [nodes[k] for k in ("input", "comp", "eq", "width", "loudness", "limiter")]
    b_data["chain"].remove(nodes["loudness"])
    b_data["chain"].append({"name": "clip", "type": "soft_clipper", "params": {"ceiling_db": -0.5}})
    b = parse_preset(b_data, "b", NODE_TYPES)
    assert store.diff(a, b) == [
        ("name", "warm", "warmer"),
        ("target.integrated_lufs", -13.0, -12.0),
        ("comp.threshold_db", -24.0, -18.0),
        ("width.bypass", False, True),
        ("loudness", "gain", None),
        ("limiter.release_ms", 50.0, None),
        ("clip", None, "soft_clipper"),
        ("chain", ["input", "eq", "comp", "width", "loudness", "limiter"],
         ["input", "comp", "eq", "width", "limiter", "clip"]),
    ]
    # With the node types, a value left out is its default: 50 ms is the limiter's default release.
    assert ("limiter.release_ms", 50.0, None) not in store.diff(a, b, NODE_TYPES)
    assert store.diff(a, a) == []


# ---- schema versions and migration --------------------------------------------------------------

def test_v1_fixture_migrates_enumerations_and_switches_to_what_they_meant():
    raw = json.loads(V1_CODES.read_text())
    loaded = store.open_preset(V1_CODES, NODE_TYPES)
    p = loaded.preset
    assert (loaded.from_version, p.schema_version, loaded.source, loaded.backup) == (1, SCHEMA_VERSION, "file", None)
    assert "migrated from schema 1 to 2 in memory" in loaded.note
    assert p.node("rumble").params["type"] == "high_pass"
    assert [p.node("tone").params[f"b{i}_type"] for i in (1, 2, 3)] == ["low_shelf", "peaking", "high_shelf"]
    assert (p.node("comp").params["link"], p.node("comp").params["detector"]) == ("none", "rms")
    assert p.node("comp").params["auto_makeup"] is True
    assert (p.node("limiter").params["true_peak"], p.node("limiter").params["auto_release"]) == (True, False)
    assert p.node("meter").params["true_peak"] is False
    # Everything else lands unchanged, where it was.
    assert p.node("comp").params["threshold_db"] == -20.5 and p.node("comp").params["ratio"] == 3
    assert p.node("tone").bypass is True and p.node("tone").params["b2_gain_db"] == -1.25
    assert (p.intensity, p.target.integrated_lufs, p.target.ceiling_dbtp, p.adaptive) == (0.85, -15.5, -1.5, False)
    assert [n.name for n in p.chain] == [n["name"] for n in raw["chain"]]
    # The names mean, for the kernels, exactly the integer the v1 file held.
    for node_raw in raw["chain"]:
        node_type = NODE_TYPES[node_raw["type"]]
        for key, code in node_raw["params"].items():
            spec = next(s for s in (*node_type.params, *node_type.options) if s.name == key)
            if spec.choices is not None or (node_raw["type"], key) in V1_SWITCHES:
                got = spec.check("t", key, p.node(node_raw["name"]).params[key], 48000.0)
                assert got == code, (node_raw["name"], key)
    # A file outside the user directory is not touched.
    assert V1_CODES.read_text() == json.dumps(raw, indent=2) + "\n"
    assert sorted(FIXTURES.glob("*.bak")) == []


def test_the_frozen_v1_tables_match_the_kernels_codes():
    """Schema 1 stored the C enum codes of auralis-rt 0.1; the migration's copy of them must
    be what the kernels took then (they have not changed since)."""
    for (type_name, key), table in V1_ENUM_CODES.items():
        assert {v: k for k, v in table.items()} == dict(NODE_TYPES[type_name].param(key).choices)
    assert {v: k for k, v in V1_FILTER_TYPES.items()} == dict(NODE_TYPES["eq3"].param("b2_type").choices)
    switches = {(t.name, s.name) for t in NODE_TYPES.values() if not t.name.startswith("eq")
                for s in (*t.params, *t.options) if s.integer and s.lo == 0 and s.hi == 1}
    assert switches == set(V1_SWITCHES)


def test_v1_warm_fixture_is_the_shipped_warm_preset():
    assert store.load(V1_WARM, NODE_TYPES).model_dump() == warm().model_dump()


def test_every_shipped_preset_is_current_and_valid():
    for path in SHIPPED_DIR.glob("*.json"):
        loaded = store.open_preset(path, NODE_TYPES)
        assert (loaded.from_version, loaded.source, loaded.note) == (SCHEMA_VERSION, "shipped", None), path.name


def test_a_user_preset_is_migrated_on_disk_keeping_the_original(udir):
    original = V1_CODES.read_bytes()
    target = udir / "codes.json"
    target.write_bytes(original)
    inode = target.stat().st_ino
    with open(target, "rb") as reader_before:  # someone reading the file while it is migrated
        loaded = store.open_preset("codes", NODE_TYPES)
        assert reader_before.read() == original  # replaced by rename, not rewritten in place
    assert loaded.backup == udir / "codes.json.v1.bak"
    assert loaded.note == "preset codes.json: migrated from schema 1 to 2; the original is kept as codes.json.v1.bak"
    assert loaded.backup.read_bytes() == original
    assert target.stat().st_ino != inode
    on_disk = json.loads(target.read_text())
    assert on_disk["schema_version"] == 2
    assert on_disk["chain"][2]["params"] == {"threshold_db": -20.5, "ratio": 3, "link": "none", "detector": "rms",
                                             "auto_makeup": True}
    assert on_disk["description"] == json.loads(original)["description"]
    assert store.load(target, NODE_TYPES).model_dump() == loaded.preset.model_dump()
    assert leftovers(udir) == []
    # Loading again: already current, nothing written.
    again = store.open_preset("codes", NODE_TYPES)
    assert (again.from_version, again.backup) == (2, None)
    assert sorted(p.name for p in udir.iterdir()) == ["codes.json", "codes.json.v1.bak"]
    # An old file put back later: the first backup is never overwritten.
    target.write_bytes(original.replace(b"-20.5", b"-21.5"))
    second = store.open_preset("codes", NODE_TYPES)
    assert second.backup == udir / "codes.json.v1.1.bak"
    assert (udir / "codes.json.v1.bak").read_bytes() == original
    assert b"-21.5" in second.backup.read_bytes()
    assert second.preset.node("comp").params["threshold_db"] == -21.5


def test_a_symlinked_user_preset_is_migrated_in_memory_only(udir, tmp_path):
    shared = tmp_path / "dotfiles" / "codes.json"
    shared.parent.mkdir()
    shutil.copy(V1_CODES, shared)
    (udir / "codes.json").symlink_to(shared)
    loaded = store.open_preset("codes", NODE_TYPES)
    assert (loaded.source, loaded.backup, loaded.preset.node("comp").params["link"]) == ("user", None, "none")
    assert "symlinks are not rewritten" in loaded.note
    assert shared.read_bytes() == V1_CODES.read_bytes() and (udir / "codes.json").is_symlink()
    # Asked explicitly, the file the link points at is migrated, its backup next to it.
    store.open_preset("codes", NODE_TYPES, write_migrated=True)
    assert (udir / "codes.json").is_symlink() and json.loads(shared.read_text())["schema_version"] == 2
    assert (shared.parent / "codes.json.v1.bak").read_bytes() == V1_CODES.read_bytes()


def test_an_invalid_old_user_preset_is_left_untouched(udir):
    data = json.loads(V1_CODES.read_text())
    data["chain"][2]["params"]["ratio"] = 0.5
    target = udir / "codes.json"
    target.write_text(json.dumps(data))
    before = target.read_bytes()
    with pytest.raises(PresetError, match=r"^preset codes\.json: chain\[2\]\.params\.ratio = 0\.5 is outside \[1, "):
        store.load("codes", NODE_TYPES)
    assert target.read_bytes() == before
    assert sorted(p.name for p in udir.iterdir()) == ["codes.json"]


def test_explicit_migration_of_a_file_elsewhere(tmp_path):
    path = tmp_path / "old.json"
    shutil.copy(V1_WARM, path)
    loaded = store.open_preset(path, NODE_TYPES, write_migrated=True)
    assert loaded.backup == tmp_path / "old.json.v1.bak"
    assert loaded.backup.read_bytes() == V1_WARM.read_bytes()
    assert json.loads(path.read_text())["schema_version"] == 2
    assert store.open_preset(path, NODE_TYPES, write_migrated=False).from_version == 2


def test_a_newer_schema_version_is_refused_in_one_line(udir):
    expected = "schema_version 3 is newer than this auralis-rt understands (2); upgrade auralis-rt"
    with pytest.raises(PresetError) as e:
        store.load(V3_FUTURE, NODE_TYPES)
    assert str(e.value) == f"preset v3_future.json: {expected}"
    shutil.copy(V3_FUTURE, udir / "future.json")
    with pytest.raises(PresetError, match="^preset future.json: schema_version 3 is newer"):
        store.load("future")
    assert sorted(p.name for p in udir.iterdir()) == ["future.json"]
    with pytest.raises(PresetError) as e:
        parse_preset(json.loads(V3_FUTURE.read_text()), "x.json")
    assert str(e.value) == f"preset x.json: {expected}"
    entry = next(e for e in store.list_presets(NODE_TYPES) if e.name == "future")
    assert entry.error == f"preset future.json: {expected}"


@pytest.mark.parametrize("version, message", [
    ("0", "schema_version = 0 is not a version auralis-rt ever wrote (1..2)"),
    ('"2"', "schema_version = '2' must be a whole number (1..2)"),
    ("2.0", "schema_version = 2.0 must be a whole number (1..2)"),
    ("true", "schema_version = True must be a whole number (1..2)"),
])
def test_malformed_schema_versions(tmp_path, version, message):
    path = tmp_path / "odd.json"
    path.write_text((SHIPPED_DIR / "warm.json").read_text().replace('"schema_version": 2', f'"schema_version": {version}'))
    with pytest.raises(PresetError) as e:
        store.load(path)
    assert str(e.value) == f"preset odd.json: {message}"


# ---- invalid values, named by field -------------------------------------------------------------

def write_warm(tmp_path, old: str, new: str) -> Path:
    text = (SHIPPED_DIR / "warm.json").read_text()
    assert old in text
    path = tmp_path / "bad.json"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize("old, new, message", [
    ('"integrated_lufs": -13.0', '"integrated_lufs": NaN', "preset bad.json: NaN is not allowed in a preset"),
    ('"ratio": 2.5', '"ratio": Infinity', "preset bad.json: Infinity is not allowed in a preset"),
    ('"threshold_db": -24.0', '"threshold_db": -240.0',
     "preset bad.json: chain[2].params.threshold_db = -240.0 is outside [-100, 20] dBFS"),
    ('"integrated_lufs": -13.0', '"integrated_lufs": 3', "preset bad.json: target.integrated_lufs = 3 is outside [-40, -5] LUFS"),
    ('"type": "stereo_width"', '"type": "widener"', "preset bad.json: chain[3]: type 'widener' is not one of biquad,"),
    ('"knee_db": 6.0', '"knee": 6.0', "preset bad.json: chain[2].params.knee: compressor has no parameter 'knee'"),
    ('"link": "max"', '"link": 1',
     "preset bad.json: chain[2].params.link = 1 must be given by name: one of 'max', 'mean', 'none'"),
    ('"link": "max"', '"link": "maximum"', "preset bad.json: chain[2].params.link = 'maximum' is not one of max, mean"),
    ('"true_peak": true', '"true_peak": 2', "preset bad.json: chain[5].params.true_peak = 2.0 is outside [0, 1]"),
    ('"eq_target": "warm"', '"eq_target": "hot"', "preset bad.json: eq_target = 'hot' is not one of flat, warm, bright"),
    ('"adaptive": true,', '"adaptive": true, "colour": "red",', "preset bad.json: colour is not a known field"),
])
def test_invalid_values_are_refused_naming_the_field(tmp_path, old, new, message):
    path = write_warm(tmp_path, old, new)
    with pytest.raises(PresetError) as e:
        store.load(path, NODE_TYPES)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(message), str(e.value)


def test_nan_given_in_memory_is_refused_even_without_node_types():
    data = warm().model_dump()
    data["chain"][2]["params"]["threshold_db"] = float("nan")
    with pytest.raises(PresetError, match=r"^preset mem: chain\[2\]\.params\.threshold_db = nan is not a finite"):
        parse_preset(data, "mem")


def test_a_switch_written_as_0_or_1_in_a_v2_file_is_accepted_and_stored_as_a_bool(tmp_path):
    path = write_warm(tmp_path, '"true_peak": true', '"true_peak": 1')
    assert store.load(path, NODE_TYPES).node("limiter").params["true_peak"] is True


# ---- JSON Schema --------------------------------------------------------------------------------

def test_schema_shows_ranges_units_and_node_parameters():
    s = store.schema(NODE_TYPES)
    targets = s["$defs"]["Targets"]["properties"]
    assert (targets["integrated_lufs"]["minimum"], targets["integrated_lufs"]["maximum"],
            targets["integrated_lufs"]["unit"]) == (-40.0, -5.0, "LUFS")
    assert targets["ceiling_dbtp"]["unit"] == "dBTP"
    assert s["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    comp = s["$defs"]["params_compressor"]["properties"]
    assert (comp["threshold_db"]["minimum"], comp["threshold_db"]["maximum"], comp["threshold_db"]["unit"]) == \
        (-100.0, 20.0, "dBFS")
    assert comp["link"]["enum"] == ["max", "mean", "none"]
    assert s["$defs"]["params_limiter"]["properties"]["true_peak"]["type"] == "boolean"
    assert "fixed while the node runs" in s["$defs"]["params_limiter"]["properties"]["lookahead_ms"]["description"]
    assert "unit" not in store.schema()["$defs"]["NodeConfig"]["properties"]["params"]  # generic without types


def test_schema_accepts_every_shipped_preset_and_refuses_what_the_loader_refuses(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(store.schema(NODE_TYPES))
    for path in SHIPPED_DIR.glob("*.json"):
        assert list(validator.iter_errors(json.loads(path.read_text()))) == [], path.name
    for old, new in (('"threshold_db": -24.0', '"threshold_db": -240.0'), ('"link": "max"', '"link": 1'),
                     ('"true_peak": true', '"true_peak": "yes"'), ('"knee_db": 6.0', '"knee": 6.0')):
        assert not validator.is_valid(json.loads(write_warm(tmp_path, old, new).read_text())), new
    assert not validator.is_valid(json.loads(V1_CODES.read_text()))  # an older version: migrate first


# ---- CLI ----------------------------------------------------------------------------------------

def test_cli_presets_list(udir, capsys):
    store.save(edited(warm(), comp__ratio=3.0))
    shutil.copy(V1_WARM, udir / "old.json")
    assert main(["presets", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"user presets: {udir}"
    rows = [line.split(None, 2) for line in out[1:]]
    assert [(r[0], r[1]) for r in rows if r[0] in ("warm", "old")] == [("old", "user"), ("warm", "user"),
                                                                        ("warm", "shipped")]
    text = "\n".join(out)
    assert "[shadows the shipped 'warm']" in text and "[shadowed by your user preset 'warm']" in text
    assert "[schema 1: migrated when loaded]" in text
    assert main(["presets", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["user_dir"] == str(udir)
    assert {(p["name"], p["source"]) for p in listed["presets"]} >= {("warm", "user"), ("warm", "shipped"),
                                                                    ("old", "user"), ("adaptive", "shipped")}
    assert sorted(p.name for p in udir.iterdir()) == ["old.json", "warm.json"]  # listing writes nothing


def test_cli_presets_show(capsys):
    assert main(["presets", "show", "warm"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"preset warm (shipped: {SHIPPED_DIR / 'warm.json'})\n")
    assert "target: -13.0 LUFS integrated, true-peak ceiling -1.0 dBTP" in out
    assert "    3. comp      compressor\n" in out
    for line in ("threshold_db  -24.0 dBFS", "ratio         2.5:1", "attack_ms     25.0 ms", "link          max",
                 "crossover_1_hz  250.0 Hz", "auto_release  on",
                 "lookahead_ms  1.5 ms  (creation option: fixed while running)"):
        assert line in out, line
    assert "2. eq        psy_eq  (all parameters at their defaults)" in out
    assert main(["presets", "show", str(V1_WARM), "--json"]) == 0
    captured = capsys.readouterr()
    assert parse_preset(json.loads(captured.out), "out", NODE_TYPES).model_dump() == warm().model_dump()
    assert "migrated from schema 1 to 2 in memory" in captured.err


def test_cli_presets_validate(tmp_path, capsys):
    assert main(["presets", "validate", str(SHIPPED_DIR / "gentle.json")]) == 0
    assert capsys.readouterr().out == "preset gentle.json: valid (schema 2, 6 nodes)\n"

    old = tmp_path / "old.json"
    shutil.copy(V1_WARM, old)
    assert main(["presets", "validate", str(old)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("preset old.json: valid after migration from schema 1 to 2 (6 nodes); "
                          f"`auralis-rt presets validate {old} --migrate` rewrites")
    assert not (tmp_path / "old.json.v1.bak").exists()  # validate alone writes nothing
    assert main(["presets", "validate", str(old), "--migrate"]) == 0
    assert "migrated from schema 1 to 2 and rewritten, the original is kept as old.json.v1.bak" in \
        capsys.readouterr().out
    assert (tmp_path / "old.json.v1.bak").read_bytes() == V1_WARM.read_bytes()
    assert json.loads(old.read_text())["schema_version"] == 2

    bad = tmp_path / "bad.json"
    data = json.loads((SHIPPED_DIR / "warm.json").read_text())
    data["chain"][2]["params"]["threshold_db"] = 40.0
    data["chain"][5]["params"]["release_ms"] = float("1e9")
    data["target"]["ceiling_dbtp"] = 1.0
    bad.write_text(json.dumps(data))
    assert main(["presets", "validate", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["auralis-rt presets: preset bad.json: target.ceiling_dbtp = 1.0 is outside [-12, 0] dBTP",
                   "auralis-rt presets: preset bad.json: chain[2].params.threshold_db = 40.0 is outside [-100, 20] dBFS",
                   "auralis-rt presets: preset bad.json: chain[5].params.release_ms = 1000000000.0 is outside "
                   "[1, 5000] ms"]

    assert main(["presets", "validate", str(V3_FUTURE)]) == 2
    assert capsys.readouterr().err == ("auralis-rt presets: preset v3_future.json: schema_version 3 is newer than "
                                       "this auralis-rt understands (2); upgrade auralis-rt\n")
    assert main(["presets", "validate", str(tmp_path / "nope.json")]) == 2
    assert capsys.readouterr().err == f"auralis-rt presets: preset {tmp_path / 'nope.json'}: no such file\n"


def test_cli_presets_schema_and_errors(capsys):
    assert main(["presets", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(store.schema(NODE_TYPES)))
    assert main(["presets", "show", "nosuch"]) == 2
    assert capsys.readouterr().err.startswith("auralis-rt presets: preset nosuch: no such preset (user: none; shipped:")
    assert main(["presets"]) == 2
    assert "SUBCOMMAND" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["presets", "frobnicate"])
    assert e.value.code == 2
