#!/usr/bin/env python3
"""Writes reference_renderings.json: chat templates and small Jinja programs
rendered by Jinja 2 (python3-jinja2) with the environment transformers'
apply_chat_template uses (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, its tojson and raise_exception), so the C++
renderer can be checked against the reference engine without Python at test
time.

Usage: python3 tests/data/chat_templates/render_reference.py FETCHED_TOKENIZERS_DIR
(FETCHED_TOKENIZERS_DIR = build/testdata/tokenizers from scripts/fetch_test_data.sh;
the Qwen 3 template is read from there, the others are in templates.json).
"""
import json
import os
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def special_tokens(config):
    out = {}
    for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                "mask_token"]:
        if key in config:
            value = config[key]
            out[key] = value["content"] if isinstance(value, dict) else value
    out["additional_special_tokens"] = config.get("additional_special_tokens", [])
    return out


CONVERSATIONS = {
    "single": [{"role": "user", "content": "What is the capital of France?"}],
    "system": [{"role": "system", "content": "You are a terse assistant."},
               {"role": "user", "content": "Hi!"}],
    "multi": [{"role": "system", "content": "You are a terse assistant."},
              {"role": "user", "content": "Hi!"},
              {"role": "assistant", "content": "Hello."},
              {"role": "user", "content": "Count to three."}],
    "no_system_multi": [{"role": "user", "content": "  Hi!  "},
                        {"role": "assistant", "content": "Hello.\n"},
                        {"role": "user", "content": "Unicode: \u00e9\u00e8 \u4f60\u597d"}],
    "thinking": [{"role": "user", "content": "2+2?"},
                 {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
                 {"role": "user", "content": "and 3+3?"}],
    "bad_alternation": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
}


def render_templates(env, templates):
    cases = []
    for name, spec in templates.items():
        template = env.from_string(spec["source"])
        for conversation in spec["conversations"]:
            for add_generation_prompt in (True, False):
                for extra in spec.get("extras", [{}]):
                    case = {"template": name, "conversation": conversation,
                            "add_generation_prompt": add_generation_prompt, "extra": extra}
                    try:
                        case["expected"] = template.render(
                            messages=CONVERSATIONS[conversation], tools=None, documents=None,
                            add_generation_prompt=add_generation_prompt,
                            **special_tokens(spec["config"]), **extra)
                    except jinja2.exceptions.TemplateError as error:
                        case["error"] = str(error)
                    cases.append(case)
    return cases


def main():
    tokenizers = sys.argv[1]
    with open(os.path.join(HERE, "templates.json")) as f:
        templates = json.load(f)
    # The fetched templates are read by the tests from the same files.
    for name, extras in (("llama3", [{}]), ("qwen3", [{}, {"enable_thinking": False}])):
        with open(os.path.join(tokenizers, name, "tokenizer_config.json")) as f:
            config = json.load(f)
        templates[name] = {"source": config["chat_template"], "config": config, "fetched": True,
                           "conversations": ["single", "system", "multi", "no_system_multi",
                                             "thinking"],
                           "extras": extras}
    env = make_env()
    with open(os.path.join(HERE, "jinja_cases.json")) as f:
        programs = json.load(f)
    jinja_cases = []
    for program in programs:
        case = dict(program)
        try:
            case["expected"] = env.from_string(program["template"]).render(**program["vars"])
        except Exception as error:  # the C++ side must fail too
            case["error"] = type(error).__name__
        jinja_cases.append(case)
    out = {
        "generator": "tests/data/chat_templates/render_reference.py with jinja2 " +
                     jinja2.__version__,
        "conversations": CONVERSATIONS,
        "template_cases": render_templates(env, templates),
        "jinja_cases": jinja_cases,
    }
    with open(os.path.join(HERE, "reference_renderings.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
