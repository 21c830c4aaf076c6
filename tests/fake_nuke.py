"""A recording stand-in for Nuke's `nuke` and `nukescripts` modules: only what the LipSync adapter
calls, behaving as Nuke documents it. Nuke itself cannot be installed here.

`install()` puts fresh fakes in sys.modules and returns the fake `nuke`. Every call that changes
Nuke's state is appended to `nuke.calls`. `nuke.execute(write, first, last)` calls `nuke.renderer`
(set by the test) to do what Nuke's render would: write the frames of the Write node's input.

Where Nuke's documented behaviour matters to the adapter, the fake behaves so: `nuke.execute` refuses a
disabled node and raises RuntimeError("Cancelled") when the user cancels (`nuke.cancel_execute`);
text knobs keep TCL as typed (`value()`) and expand it on `evaluate()` (`[value root.name]`,
`[value this.name]`, `[file dirname ...]`); a Read's `before`/`after` take only Nuke's choices.
Standard library only: the bare-interpreter test runs the adapter against it without site packages.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import sys
import tempfile
import types
from pathlib import Path

from ocio_config import write_config

STARTLINE, NO_ANIMATION, INVISIBLE = 0x1000, 0x100, 0x400
WRITE_NON_DEFAULT_ONLY, TO_VALUE = 0x2, 0x4
READ_FRAMES = ("hold", "loop", "bounce", "black")  # a Read's before/after choices
TCL = re.compile(r"\[([^\[\]]*)\]")


class Knob:
    def __init__(self, name: str, label: str = "", value=None):
        self._name, self.label = name, label
        self._value, self._default = value, value
        self.flags, self.range, self._tooltip, self.keys = set(), None, "", {}
        self.executed = 0
        self.node = None  # set when the knob is added to a node

    def name(self) -> str:
        return self._name

    def value(self):
        return self._value

    def setValue(self, value) -> bool:
        self._value = value
        return True

    def evaluate(self):
        """The value with its TCL expanded, innermost brackets first (the commands Nuke scripts use for paths)."""
        text = str(self._value)
        while TCL.search(text):
            text = TCL.sub(lambda match: self._tcl(match.group(1).split()), text, count=1)
        return text

    def _tcl(self, words: list) -> str:
        if words[:1] == ["value"] and len(words) == 2:
            owner, knob = words[1].split(".", 1)
            node = self.node if owner == "this" else self.node._nuke.toNode(owner)
            return node.name() if knob == "name" and owner == "this" else str(node[knob].value())
        if words[:2] == ["file", "dirname"] and len(words) <= 3:  # an unsaved script's name is "": its folder is "."
            return os.path.dirname(words[2] if len(words) == 3 else "") or "."
        raise RuntimeError(f"TCL: cannot evaluate [{' '.join(words)}]")

    def setTooltip(self, text: str) -> None:
        self._tooltip = text

    def tooltip(self) -> str:
        return self._tooltip

    def setFlag(self, flag: int) -> None:
        self.flags.add(flag)

    def execute(self) -> None:
        self.executed += 1


class Array_Knob(Knob):
    expression = None

    def setExpression(self, expression: str) -> None:
        self.expression = expression

    def value(self):
        if self.expression is None:
            return self._value
        owner, knob = self.expression.split(".", 1)  # node.knob: the forms a gizmo's defaults use
        return self.node._nuke.toNode(owner)[knob].value()

    def setValue(self, value) -> bool:
        self.expression = None  # a value typed over an expression replaces it, as in Nuke
        return super().setValue(value)

    def setRange(self, low, high) -> None:
        self.range = (low, high)

    def setDefaultValue(self, values) -> None:
        self._default = values[0]

    def setAnimated(self) -> None:  # the test keys a knob as a user would
        if NO_ANIMATION in self.flags:
            raise ValueError(f"{self._name} cannot be animated")

    def setValueAt(self, value, frame: int) -> None:
        self.setAnimated()
        self.keys[frame] = value

    def isAnimated(self) -> bool:
        return bool(self.keys)

    def getValueAt(self, frame: int):
        """Linear between keys (Nuke's curves are smooth by default; linear is enough for a fake)."""
        if not self.keys:
            return self._value
        frames = sorted(self.keys)
        if frame <= frames[0]:
            return self.keys[frames[0]]
        if frame >= frames[-1]:
            return self.keys[frames[-1]]
        after = next(f for f in frames if f >= frame)
        before = max(f for f in frames if f <= frame)
        if after == before:
            return self.keys[before]
        return self.keys[before] + (self.keys[after] - self.keys[before]) * (frame - before) / (after - before)

    def notDefault(self) -> bool:
        return self._value != self._default or bool(self.keys)


class Int_Knob(Array_Knob):
    def __init__(self, name, label=""):
        super().__init__(name, label, 0)


class Double_Knob(Array_Knob):
    def __init__(self, name, label=""):
        super().__init__(name, label, 0.0)


class File_Knob(Knob):
    def __init__(self, name, label=""):
        super().__init__(name, label, "")


class String_Knob(File_Knob):
    pass


class Boolean_Knob(Knob):
    def __init__(self, name, label=""):
        super().__init__(name, label, False)


class Enumeration_Knob(Knob):
    def __init__(self, name, label, values):
        super().__init__(name, label, values[0])
        self.values = list(values)

    def setValue(self, value) -> bool:
        if value not in self.values:
            raise ValueError(f"{self._name}: {value!r} is not one of {self.values}")
        return super().setValue(value)


class PyScript_Knob(Knob):
    def __init__(self, name, label="", command=""):
        super().__init__(name, label, command)


class Tab_Knob(Knob):
    pass


class Text_Knob(Knob):
    def __init__(self, name, label="", text=""):
        super().__init__(name, label, text)


class Node:
    def __init__(self, nuke, klass: str, **knobs):
        self._nuke, self._class = nuke, klass
        self._name = knobs.pop("name", klass)
        self._knobs: dict[str, Knob] = {}
        self._inputs: dict[int, Node] = {}
        self.children: list[Node] = []
        built_in = [Boolean_Knob("disable"), Knob("knobChanged", value=""), Knob("tile_color", value=0)]
        if klass == "Read":
            built_in += [Enumeration_Knob("before", "", READ_FRAMES), Enumeration_Knob("after", "", READ_FRAMES)]
        for knob in built_in:
            knob.node = self
            self._knobs[knob.name()] = knob
        for name, value in knobs.items():
            self[name].setValue(value)

    def Class(self) -> str:
        return self._class

    def name(self) -> str:
        return self._name

    def fullName(self) -> str:
        return self._name

    def setName(self, name: str) -> None:
        self._name = f"{name}1"  # Nuke makes names unique by numbering them

    def __getitem__(self, name: str) -> Knob:
        # Built-in knobs of Nuke's own nodes (file, first, reload, which...) exist from the start.
        if name not in self._knobs:
            self._knobs[name] = Knob(name)
            self._knobs[name].node = self
        return self._knobs[name]

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def addKnob(self, knob: Knob) -> None:
        self._nuke.calls.append(("addKnob", self._name, knob.name()))
        knob.node = self
        self._knobs[knob.name()] = knob

    def writeKnobs(self, flags: int) -> str:
        """The knobs as a script line (values only, with the keys of animated ones)."""
        return " ".join(f"{name} {knob.value()!r} {sorted(knob.keys.items())}" for name, knob in sorted(self._knobs.items()))

    def inputs(self) -> int:
        return max(self._inputs, default=-1) + 1

    def setInput(self, index: int, node) -> None:
        self._inputs[index] = node

    def input(self, index: int):
        return self._inputs.get(index)

    def node(self, name: str):
        return next((n for n in self.children if n.name() == name), None)

    def begin(self) -> None:
        self._nuke.context.append(self)

    def end(self) -> None:
        self._nuke.context.pop()


class ProgressTask:
    def __init__(self, nuke, title: str):
        self._nuke = nuke
        nuke.progress.append(("start", title))

    def setMessage(self, text: str) -> None:
        self._nuke.progress.append(("message", text))

    def setProgress(self, percent: int) -> None:
        self._nuke.progress.append(("progress", percent))

    def isCancelled(self) -> bool:
        return self._nuke.cancel_after is not None and sum(e[0] == "progress" for e in self._nuke.progress) >= self._nuke.cancel_after


class Menu:
    def __init__(self, nuke, name: str):
        self._nuke, self.name = nuke, name

    def addMenu(self, name: str):
        self._nuke.calls.append(("addMenu", self.name, name))
        return Menu(self._nuke, f"{self.name}/{name}")

    def addCommand(self, name: str, command, *args, **kwargs) -> None:
        self._nuke.calls.append(("addCommand", f"{self.name}/{name}", command))


# ---------------------------------------------------------------------------------------- gizmos
# Nuke makes a node of class NAME from NAME.gizmo on its plugin path (NUKE_PATH). The loader reads what
# a .gizmo holds: the Gizmo block (addUserKnob lines by Nuke's knob type numbers, then knob values; an
# expression as {{node.knob}}), then the inside nodes, connected through Nuke's stack (a node with
# `inputs N` takes the top N, input 0 the top; `set V [stack 0]`, `push $V`), up to end_group.
KNOB_CLASSES = {20: "Tab_Knob", 1: "String_Knob", 2: "File_Knob", 3: "Int_Knob", 4: "Enumeration_Knob", 6: "Boolean_Knob",
                7: "Double_Knob", 22: "PyScript_Knob", 26: "Text_Knob"}
FLAGS = {"+STARTLINE": STARTLINE, "+NO_ANIMATION": NO_ANIMATION, "+INVISIBLE": INVISIBLE}


def tcl_words(text: str) -> list:
    """TCL words: "quoted" (backslash escapes undone), {braced} (kept as written, nesting counted), bare."""
    words, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text[i] == '"':
            word, i = [], i + 1
            while text[i] != '"':
                if text[i] == "\\":
                    i += 1
                    word.append("\n" if text[i] == "n" else text[i])
                else:
                    word.append(text[i])
                i += 1
            words.append("".join(word))
            i += 1
        elif text[i] == "{":
            depth, j = 1, i + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            words.append(text[i + 1:j - 1])
            i = j
        else:
            j = i
            while j < len(text) and not text[j].isspace():
                j += 1
            words.append(text[i:j])
            i = j
    return words


def _user_knob(nuke, words: list) -> Knob:
    kind, name, rest = int(words[0]), words[1], words[2:]
    klass = getattr(nuke, KNOB_CLASSES[kind])
    options = {}
    flags = []
    i = 0
    while i < len(rest):
        if rest[i] in FLAGS or rest[i].startswith("-"):
            flags.append(rest[i])
            i += 1
        elif rest[i] == "R":
            options["R"] = (float(rest[i + 1]), float(rest[i + 2]))
            i += 3
        else:
            options[rest[i]] = rest[i + 1]
            i += 2
    label = options.get("l", name)
    if klass is nuke.Enumeration_Knob:
        knob = klass(name, label, tcl_words(options["M"]))
    elif klass is nuke.PyScript_Knob:
        knob = klass(name, label, options.get("T", ""))
    elif klass is nuke.Text_Knob:
        knob = klass(name, label, options.get("T", ""))
    else:
        knob = klass(name, label)
    if "R" in options:
        knob.setRange(*options["R"])
    knob.setTooltip(options.get("t", ""))
    for flag in flags:
        if flag in FLAGS:
            knob.setFlag(FLAGS[flag])
    return knob


def _set_from_script(knob: Knob, text: str) -> None:
    if text.startswith("{") and text.endswith("}"):  # {{root.first_frame}}: an expression
        knob.setExpression(text[1:-1])
    elif isinstance(knob, Boolean_Knob):
        knob.setValue(text == "true")
    elif isinstance(knob, Int_Knob):
        knob.setValue(int(text))
    elif isinstance(knob, Double_Knob):
        knob.setValue(float(text))
    elif type(knob) is Knob and re.fullmatch(r"-?\d+", text):  # a built-in knob: Nuke's number knobs hold numbers
        knob.setValue(int(text))
    else:
        knob.setValue(text)


def load_gizmo(nuke, path: str, klass: str):
    lines = open(path, encoding="utf-8").read().splitlines()
    assert lines[0].startswith("version ") and lines[1] == "Gizmo {", "not a gizmo file"
    gizmo = Node(nuke, klass)
    gizmo.setName(klass)
    i, stack, saved = 2, [], {}
    while lines[i] != "}":
        words = tcl_words(lines[i])
        if words[0] == "addUserKnob":
            gizmo.addKnob(_user_knob(nuke, tcl_words(words[1])))
        else:
            _set_from_script(gizmo[words[0]], words[1])
        i += 1
    gizmo.begin()
    for line in lines[i + 1:]:
        if line.startswith(" ") and line.endswith(" {"):  # a node begins
            klass_inside, inputs, knobs = line.split()[0], 1, {}
            continue
        words = tcl_words(line)
        if line.startswith("  "):
            if words[0] == "inputs":
                inputs = int(words[1])
            else:
                knobs[words[0]] = words[1]
        elif words == ["}"]:
            name = knobs.pop("name")
            node = nuke.nodes.__dict__[klass_inside](name=name)
            for knob, text in knobs.items():
                _set_from_script(node[knob], text)
            for index in range(inputs):
                if stack:
                    node.setInput(index, stack.pop())
            stack.append(node)
        elif words[0] == "set":
            saved[words[1]] = stack[-1]
        elif words[0] == "push":
            stack.append(saved[words[1][1:]] if words[1].startswith("$") else None)
        elif words == ["end_group"]:
            break
    gizmo.end()
    return gizmo


@functools.lru_cache(maxsize=None)  # one fake Nuke install per test process
def _nuke_install() -> str:
    folder = tempfile.mkdtemp(prefix="Nuke15.0v1-")
    atexit.register(shutil.rmtree, folder, True)
    write_config(Path(folder, "plugins", "OCIOConfigs", "configs", "nuke-default", "config.ocio"))
    return folder


def install(gui: bool = False) -> types.ModuleType:
    """Fresh fake `nuke` and `nukescripts` in sys.modules; returns the fake `nuke`."""
    nuke = types.ModuleType("nuke")
    nuke.calls, nuke.progress, nuke.messages, nuke.context = [], [], [], []
    nuke.cancel_after = None  # a number of progress updates after which the user presses Cancel
    nuke.renderer = None
    nuke.env = {"gui": gui}
    nuke.STARTLINE, nuke.NO_ANIMATION, nuke.INVISIBLE = STARTLINE, NO_ANIMATION, INVISIBLE
    nuke.WRITE_NON_DEFAULT_ONLY, nuke.TO_VALUE = WRITE_NON_DEFAULT_ONLY, TO_VALUE
    nuke.cancel_execute = False  # the user presses Cancel in the progress bar of nuke.execute
    for knob in (Knob, Array_Knob, Int_Knob, Double_Knob, File_Knob, String_Knob, Boolean_Knob, Enumeration_Knob,
                 PyScript_Knob, Tab_Knob, Text_Knob):
        setattr(nuke, knob.__name__, knob)
    # Nuke's OpenColorIO settings: a config shipped with Nuke, found beside its executable (a small one of the tests'
    # here, in a Nuke install made for this fake), unless the Project Settings name a custom one.
    nuke.EXE_PATH = os.path.join(_nuke_install(), "Nuke15.0")
    root = Node(nuke, "Root", name="root", first_frame=1001, last_frame=1100, proxy=True, workingSpaceLUT="scene_linear",
                OCIO_config="nuke-default", customOCIOConfigPath="")
    root["name"].setValue("")  # an unsaved script
    nuke.root = lambda: root
    nuke.selected = []
    nuke.selectedNodes = lambda: list(nuke.selected)
    nuke.this = None  # the node a callback runs for
    nuke.thisNode = lambda: nuke.this
    nuke.toNode = lambda name: root if name == "root" else None
    nuke.addUpdateUI = lambda function, args=(), kwargs={}, nodeClass="*": nuke.calls.append(("updateUI", function, nodeClass))

    def make(klass, **knobs):
        node = Node(nuke, klass, **knobs)
        if nuke.context:
            nuke.context[-1].children.append(node)
        nuke.calls.append(("node", klass, node.name()))
        return node

    nuke.nodes = types.SimpleNamespace(**{k: (lambda k=k, **kw: make(k, **kw)) for k in
                                          ("Input", "Output", "Write", "Read", "Switch", "Group")})
    nuke.plugin_dirs = []  # what NUKE_PATH and nuke.pluginAddPath put on Nuke's plugin path

    def create_node(klass, knobs="", inpanel=True):
        gizmo = next((os.path.join(d, klass + ".gizmo") for d in nuke.plugin_dirs if os.path.isfile(os.path.join(d, klass + ".gizmo"))), None)
        if gizmo is None:
            return make(klass)
        node = load_gizmo(nuke, gizmo, klass)
        nuke.calls.append(("node", klass, node.name()))
        nuke.this = node
        exec(node["onCreate"].value(), {"nuke": nuke})  # Nuke runs a node's onCreate as it makes it
        return node

    nuke.createNode = create_node

    def execute(node, first, last):
        if node["disable"].value():
            raise RuntimeError(f"{node.name()} is disabled")
        nuke.calls.append(("execute", node.name(), first, last, {"proxy": root["proxy"].value()}))
        if nuke.cancel_execute:
            raise RuntimeError("Cancelled")
        nuke.renderer(node, first, last)

    nuke.execute = execute
    nuke.ProgressTask = lambda title: ProgressTask(nuke, title)
    nuke.executeInMainThread = lambda function, args=(): nuke.calls.append(("main", function(*args)))
    nuke.message = nuke.messages.append
    nuke.pluginAddPath = lambda path: nuke.plugin_dirs.append(path)
    nuke.menu = lambda name: Menu(nuke, name)

    nukescripts = types.ModuleType("nukescripts")
    nukescripts.panels = types.SimpleNamespace(
        registerWidgetAsPanel=lambda widget, name, id, create=False: nuke.calls.append(("panel", widget, name, id))
    )
    sys.modules["nuke"], sys.modules["nukescripts"] = nuke, nukescripts
    return nuke
