"""The operator screens (issue 15): gatewayApp/op/bob/gateway.bob (Phoebus)
and gatewayApp/op/adl/gateway.adl (MEDM) are well-formed, name only records
of gatewayApp/Db/gateway.db, and name every one of them, so a record added
to the database needs a place on both screens. Their buttons write 1 to the
control flags (bo records), and Phoebus asks before it stops the gateway.

No process, no socket: the files are parsed here (the .bob with
xml.etree, the .adl with a small parser of MEDM's block grammar)."""
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
DB = TOP / "gatewayApp" / "Db" / "gateway.db"
BOB = TOP / "gatewayApp" / "op" / "bob" / "gateway.bob"
ADL = TOP / "gatewayApp" / "op" / "adl" / "gateway.adl"
PREFIX = "test:gw"

# Records of gateway.db that belong on no screen: {name: reason}. None yet.
NOT_ON_SCREENS = {}

STOP_FLAGS = {"quitFlag", "quitServerFlag"}
# The action button's "ask first" property, under the names it is written
# with in gateway.bob (see the comment at its top).
CONFIRM_PROPERTIES = ("show_confirm_dialog", "confirm_dialog")


def db_records(text):
    """{record name without $(P): : record type} of a .db text."""
    return {name: rtype for rtype, name in
            re.findall(r'record\(\s*(\w+)\s*,\s*"\$\(P\):([^"]+)"\s*\)', text)}


def record_of(pv_name):
    """The record name a display's PV name refers to once $(P) is the test
    prefix ("$(P):fd.HIGH" -> "fd"); None for a name outside the prefix."""
    name = pv_name.strip().replace("$(P)", PREFIX)
    if not name.startswith(PREFIX + ":"):
        return None
    return name[len(PREFIX) + 1:].split(".")[0]


def name_problems(pv_names, records):
    """What is wrong with the PV names of one display: a name that is no
    record of the database, a record that is on no screen."""
    problems = ["%r is not a record of gateway.db" % pv for pv in pv_names
                if record_of(pv) not in records]
    named = {record_of(pv) for pv in pv_names}
    problems += ["record %s of gateway.db is on no screen" % name
                 for name in sorted(records) if name not in named and name not in NOT_ON_SCREENS]
    return problems


# ---- Phoebus

def bob_problems(text, records):
    """Problems of a .bob text; raises ElementTree.ParseError when it is not
    well-formed XML."""
    root = ElementTree.fromstring(text)
    if root.tag != "display":
        return ["root element is <%s>, not <display>" % root.tag]
    # widgets' pv_name and the pv_name of each action, rule and script
    pv_names = [element.text or "" for element in root.iter("pv_name")]
    problems = name_problems(pv_names, records)
    for widget in root.iter("widget"):
        actions = widget.findall("actions/action")
        for action in actions:
            pv = action.findtext("pv_name", "")
            if action.get("type") != "write_pv":
                problems.append("%s: action of type %s" % (widget.findtext("name"), action.get("type")))
            elif records.get(record_of(pv)) != "bo" or action.findtext("value", "").strip() != "1":
                problems.append("%s: writes %r to %s, not 1 to a flag"
                                % (widget.findtext("name"), action.findtext("value"), pv))
            elif record_of(pv) in STOP_FLAGS and not any(
                    widget.findtext(name) == "true" for name in CONFIRM_PROPERTIES):
                problems.append("%s: stops the gateway without confirmation" % widget.findtext("name"))
    return problems


# ---- MEDM

class AdlError(ValueError):
    pass


class Block:
    """One `name { ... }` block of an ADL file: its key=value pairs, its
    bare values (the colour list) and its blocks, in file order."""

    def __init__(self, name):
        self.name = name
        self.pairs = []
        self.values = []
        self.blocks = []

    def get(self, key):
        return dict(self.pairs).get(key)

    def block(self, name):
        return next((b for b in self.blocks if b.name == name), None)

    def walk(self):
        yield self
        for b in self.blocks:
            yield from b.walk()


ADL_TOKEN = re.compile(r'\s*(?:("(?:[^"\\\n]|\\.)*")|([{}=,])|([^\s{}=,"]+)|(\S))')


def adl_tokens(text):
    tokens = []
    for m in ADL_TOKEN.finditer(text):
        quoted, punctuation, word, stray = m.groups()
        if stray:
            raise AdlError("unexpected %r at offset %d" % (stray, m.start(4)))
        if quoted:
            tokens.append(("string", quoted[1:-1]))
        elif punctuation:
            tokens.append((punctuation, punctuation))
        elif word:
            tokens.append(("word", word))
    return tokens


def parse_adl(text):
    """The top-level blocks of an ADL text. Grammar: an item is
    `name { items }`, `key=value` (value a word or a "string") or a bare
    `value,` (the colour map's list); braces balance and nothing is left."""
    tokens = adl_tokens(text)
    top = Block("(file)")
    stack = [top]
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        following = tokens[i + 1][0] if i + 1 < len(tokens) else None
        if kind == "}":
            if len(stack) == 1:
                raise AdlError("'}' without '{' (token %d)" % i)
            stack.pop()
            i += 1
        elif kind in ("word", "string") and following == "{":
            block = Block(value)
            stack[-1].blocks.append(block)
            stack.append(block)
            i += 2
        elif kind == "word" and following == "=":
            if i + 2 >= len(tokens) or tokens[i + 2][0] not in ("word", "string"):
                raise AdlError("%s= without a value" % value)
            stack[-1].pairs.append((value, tokens[i + 2][1]))
            i += 3
        elif kind == "word" and following == ",":
            stack[-1].values.append(value)
            i += 2
        else:
            raise AdlError("unexpected %r (token %d) in %s" % (value, i, stack[-1].name))
    if len(stack) > 1:
        raise AdlError("end of file inside %s" % " / ".join(b.name for b in stack[1:]))
    return top.blocks


def adl_objects(blocks):
    """The drawn objects among blocks (a composite's children included)."""
    for block in blocks:
        if block.name in ("file", "color map"):
            continue
        yield block
        children = block.block("children")
        if children is not None:
            yield from adl_objects(children.blocks)


def adl_problems(text, records):
    """Problems of an .adl text; raises AdlError when it does not parse."""
    blocks = parse_adl(text)
    problems = []
    if [b.name for b in blocks[:3]] != ["file", "display", "color map"]:
        problems.append("does not start with file, display, color map: %s"
                        % [b.name for b in blocks[:3]])
    colour_map = next((b for b in blocks if b.name == "color map"), None)
    colours = colour_map.block("colors") if colour_map else None
    if not colours or colour_map.get("ncolors") != "65" or len(colours.values) != 65:
        problems.append("no color map of 65 colours")
    for block in adl_objects(blocks):
        position = block.block("object")
        if position is None or not all((position.get(k) or "").isdigit()
                                       for k in ("x", "y", "width", "height")):
            problems.append("%s without object { x y width height }" % block.name)
    channels = [value for block in blocks for b in block.walk()
                for key, value in b.pairs if key in ("chan", "rdbk", "ctrl")]
    problems += name_problems(channels, records)
    for button in (b for b in blocks if b.name == "message button"):
        control = button.block("control")
        chan = control and (control.get("chan") or control.get("ctrl"))
        if records.get(record_of(chan or "")) != "bo" or button.get("press_msg") != "1":
            problems.append("message button %r: press_msg %r to %s, not 1 to a flag"
                            % (button.get("label"), button.get("press_msg"), chan))
    return problems


# ---- the tests

@pytest.fixture(scope="module")
def records():
    found = db_records(DB.read_text())
    assert len(found) > 40 and "vctotal" in found and found["quitFlag"] == "bo", found
    return found


def test_the_phoebus_screen_names_every_record_of_gateway_db_and_nothing_else(records):
    assert bob_problems(BOB.read_text(), records) == []


def test_the_medm_screen_names_every_record_of_gateway_db_and_nothing_else(records):
    assert adl_problems(ADL.read_text(), records) == []


def test_both_screens_have_a_button_for_each_control_flag(records):
    flags = {name for name, rtype in records.items() if rtype == "bo"}
    assert len(flags) == 7, flags
    root = ElementTree.fromstring(BOB.read_text())
    bob_flags = {record_of(action.findtext("pv_name")) for action in root.iter("action")}
    adl_flags = {record_of(b.block("control").get("chan"))
                 for b in parse_adl(ADL.read_text()) if b.name == "message button"}
    assert bob_flags == flags
    assert adl_flags == flags


def test_the_phoebus_checker_rejects_unknown_records_missing_records_and_broken_xml(records):
    text = BOB.read_text()
    unknown = text.replace("<pv_name>$(P):vctotal</pv_name>", "<pv_name>$(P):vcTotal</pv_name>", 1)
    assert bob_problems(unknown, records) == [
        "'$(P):vcTotal' is not a record of gateway.db",
        "record vctotal of gateway.db is on no screen"]
    assert "'other:pv' is not a record of gateway.db" in bob_problems(
        text.replace("$(P):topPvs", "other:pv"), records)
    assert any("not 1 to a flag" in p for p in bob_problems(
        text.replace("<value>1</value>", "<value>0</value>", 1), records))
    assert any("without confirmation" in p for p in bob_problems(
        text.replace("confirm_dialog>true<", "confirm_dialog>false<"), records))
    with pytest.raises(ElementTree.ParseError):
        bob_problems(text[:len(text) // 2], records)


def test_the_medm_checker_rejects_unknown_records_and_ill_formed_files(records):
    text = ADL.read_text()
    unknown = text.replace('chan="$(P):dead"', 'chan="$(P):deadd"')
    assert adl_problems(unknown, records) == [
        "'$(P):deadd' is not a record of gateway.db",
        "record dead of gateway.db is on no screen"]
    assert any("not 1 to a flag" in p for p in adl_problems(
        text.replace('press_msg="1"', 'press_msg="0"', 1), records))
    assert any("without object" in p for p in adl_problems(
        text.replace("\t\twidth=", "\t\twide=", 1), records))
    with pytest.raises(AdlError, match="end of file inside"):
        adl_problems(text[:text.rindex("}")], records)
    with pytest.raises(AdlError, match="without '{'"):
        adl_problems(text + "}\n", records)
    with pytest.raises(AdlError):
        adl_problems(text.replace('chan="$(P):fd"', 'chan="$(P):fd'), records)
