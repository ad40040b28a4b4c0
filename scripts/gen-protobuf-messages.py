#!/usr/bin/env python3
"""Writes control/apiserver/src/protobuf/messages.txt: the wire layout of every Kubernetes
protobuf message, which keel-apiserver's protobuf codec reads to turn protobuf bodies into the
JSON it stores and back.

Sources, both crates keel already depends on (pinned in the workspace manifest):
- k8s-pb: each message's fields with their tag, wire type and message type (prost attributes);
- k8s-openapi: each field's JSON name (its serde keys), since k8s-pb's Rust names lose the
  case of acronyms (`host_ip` is `hostIP`). Kubernetes names proto fields after JSON fields,
  so the JSON name is the proto name.

Run it after bumping either crate:
    python3 scripts/gen-protobuf-messages.py [CARGO_REGISTRY_SRC]
"""

import glob
import os
import re
import sys

K8S_PB = "k8s-pb-0.8.0"
K8S_OPENAPI = "k8s-openapi-0.29.0"
K8S_OPENAPI_VERSION = "v1_33"

OUTPUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "control", "apiserver", "src", "protobuf", "messages.txt")


def registry_src():
    if len(sys.argv) > 1:
        return sys.argv[1]
    home = os.path.expanduser("~/.cargo/registry/src")
    for index in sorted(glob.glob(os.path.join(home, "*"))):
        if os.path.isdir(os.path.join(index, K8S_PB)):
            return index
    sys.exit(f"no {K8S_PB} under {home}: run `cargo fetch` first")


def normalize(name):
    """A name compared across crates: lower case letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower().removeprefix("r#"))


def json_names(root):
    """(module, struct) -> {normalized rust name: JSON name} from k8s-openapi's serde keys."""
    names = {}
    base = os.path.join(root, K8S_OPENAPI, "src", K8S_OPENAPI_VERSION)
    for path in glob.glob(os.path.join(base, "**", "*.rs"), recursive=True):
        module = os.path.relpath(os.path.dirname(path), base).replace(os.sep, ".")
        text = open(path).read()
        struct = re.search(r"^pub struct (\w+)", text, re.M)
        if not struct:
            continue
        keys = {}
        for json_name, key in re.findall(r'"([^"]+)" => Field::Key_(\w+),', text):
            keys[normalize(key)] = json_name
            keys[normalize(json_name)] = json_name
        names[(module, struct.group(1).lower())] = keys
    return names


def lower_camel(rust):
    parts = rust.removeprefix("r#").split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


FIELD = re.compile(r'#\[prost\(([^]]*)\)\]')


def resolve(type_text, module):
    """The message a Rust type path names, as `module.Struct`."""
    path = type_text.split("::")
    parts = module.split(".")
    while path and path[0] == "super":
        parts.pop()
        path.pop(0)
    return ".".join(parts + path)


def message_type(declaration, module):
    """The message type inside a field's Rust type (Option<...>, Vec<...>, BTreeMap<String, ...>)."""
    inner = declaration.split(":", 1)[1].strip().rstrip(",").replace(" ", "")
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<",
                    "::prost::alloc::boxed::Box<"):
        while inner.startswith(wrapper):
            inner = inner[len(wrapper):-1].rstrip(",")
    prefix = "::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,"
    if inner.startswith(prefix):
        inner = inner[len(prefix):-1].rstrip(",")
    return resolve(inner, module)


def parse_structs(root):
    """[(module, struct, [(rust name, prost attribute, declaration)])] of every k8s-pb message."""
    base = os.path.join(root, K8S_PB, "src")
    structs = []
    for path in sorted(glob.glob(os.path.join(base, "**", "mod.rs"), recursive=True)):
        module = os.path.relpath(os.path.dirname(path), base).replace(os.sep, ".")
        lines = open(path).read().split("\n")
        i = 0
        current = None
        while i < len(lines):
            line = lines[i].strip()
            found = re.match(r"pub struct (\w+) \{", line)
            attribute = FIELD.match(line)
            if found:
                current = (module, found.group(1), [])
                structs.append(current)
            elif attribute and current:
                declaration = ""
                i += 1
                while True:
                    declaration += lines[i].strip()
                    depth = declaration.count("<") - declaration.count(">")
                    if depth == 0 and declaration.endswith(","):
                        break
                    i += 1
                rust = re.match(r"pub (r#\w+|\w+):", declaration).group(1)
                current[2].append((rust, attribute.group(1), declaration))
            elif line == "}":
                current = None
            i += 1
    return structs


def is_inline(keys, rust, spec):
    """A Go struct embedded with `json:",inline"` is one proto field whose fields JSON lifts
    into the parent: k8s-openapi has the fields, not the struct."""
    return bool(keys) and normalize(rust) not in keys and spec.startswith("message, optional")


def messages(root, names):
    structs = parse_structs(root)
    # An embedded struct has no k8s-openapi type of its own: its fields are named in the
    # parent's (VolumeSource's `downwardAPI` is Volume's).
    for module, struct, fields in structs:
        keys = names.get((module, struct.lower()), {})
        for rust, spec, declaration in fields:
            if is_inline(keys, rust, spec):
                embedded = message_type(declaration, module).rsplit(".", 1)
                names.setdefault((embedded[0], embedded[1].lower()), {}).update(keys)
    out = []
    for module, struct, fields in structs:
        out.append(f"message {module}.{struct}")
        keys = names.get((module, struct.lower()), {})
        for rust, spec, declaration in fields:
            json = keys.get(normalize(rust), lower_camel(rust))
            tag = re.search(r'tag = "(\d+)"', spec).group(1)
            kind = spec.split(",")[0].strip()
            if kind.startswith("btree_map"):
                value = re.search(r'"string, (\w+)"', spec).group(1)
                if value == "message":
                    value = message_type(declaration, module)
                out.append(f"field {tag} {json} map {value}")
                continue
            label = "repeated" if "repeated" in spec else "optional"
            if kind.startswith("bytes"):
                kind = "bytes"
            elif kind == "message":
                kind = message_type(declaration, module)
                if is_inline(keys, rust, spec):
                    label = "inline"
            out.append(f"field {tag} {json} {label} {kind}")
    declared = {line.split()[1] for line in out if line.startswith("message ")}
    for line in out:
        words = line.split()
        if words[0] == "field" and "." in words[-1] and words[-1] not in declared:
            sys.exit(f"unresolved message type in: {line}")
    return out


def main():
    root = registry_src()
    lines = messages(root, json_names(root))
    header = [
        f"# Generated by scripts/gen-protobuf-messages.py from {K8S_PB} and {K8S_OPENAPI}.",
        "# message MODULE.NAME, then: field TAG JSON-NAME (optional|repeated) TYPE, or",
        "# field TAG JSON-NAME map VALUE-TYPE (keys are strings), or",
        "# field TAG GO-NAME inline MESSAGE (an embedded struct whose fields JSON lifts up).",
    ]
    with open(OUTPUT, "w") as f:
        f.write("\n".join(header + lines) + "\n")
    print(f"wrote {sum(l.startswith('message') for l in lines)} messages to {OUTPUT}")


if __name__ == "__main__":
    main()
