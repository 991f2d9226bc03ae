#!/usr/bin/python3
"""Renders every chat-template fixture with Python's jinja2, set up the way transformers'
apply_chat_template sets it up, and stores what chat_template_fixture_test.cpp must produce.

Run with Debian's python3, which has python3-jinja2 (the pyenv python3 does not):
    /usr/bin/python3 tests/engine/template/make_expected.py

fixtures/cases.json names each case: a template, a context (fixtures/contexts/*.json) and
extra variables. The variables a case renders with are, later ones winning:
    defaults, the template's vars, the context file, the case's vars.
Outputs go to fixtures/expected/<template>__<name>.txt; a case whose template calls
raise_exception stores the message in fixtures/expected/<template>__<name>.error instead.
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")

# strftime_now() answers this fixed moment so that outputs are deterministic; the C++ test
# injects the same one (a Friday, day 208 of the leap year 2024).
FIXED_NOW = datetime(2024, 7, 26, 14, 30, 5)


# --- transformers' chat template environment (transformers/utils/chat_template_utils.py) ---

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces jinja2's tojson, which HTML-escapes, with plain json.dumps.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


class GenerationTag(Extension):
    """transformers' AssistantTracker, minus the token tracking: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def case_name(case):
    return case["template"] + "__" + case.get("name", case["context"])


def main():
    manifest = load_json(os.path.join(FIXTURES, "cases.json"))
    env = make_environment()
    out_dir = os.path.join(FIXTURES, "expected")
    os.makedirs(out_dir, exist_ok=True)
    for stale in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, stale))
    names = set()
    for case in manifest["cases"]:
        name = case_name(case)
        if name in names:
            sys.exit(f"duplicate case name {name}")
        names.add(name)
        spec = manifest["templates"][case["template"]]
        with open(os.path.join(FIXTURES, "templates", spec["file"]), encoding="utf-8", newline="") as f:
            source = f.read()
        variables = dict(manifest["defaults"])
        variables.update(spec.get("vars", {}))
        variables.update(load_json(os.path.join(FIXTURES, "contexts", case["context"] + ".json")))
        variables.update(case.get("vars", {}))
        template = env.from_string(source)
        try:
            output, suffix = template.render(**variables), ".txt"
        except jinja2.exceptions.TemplateError as e:
            if type(e) is not jinja2.exceptions.TemplateError:  # only raise_exception() is expected
                raise
            output, suffix = str(e), ".error"
        with open(os.path.join(out_dir, name + suffix), "w", encoding="utf-8", newline="") as f:
            f.write(output)
        print(f"{name}{suffix}: {len(output)} chars")


if __name__ == "__main__":
    main()
