#!/usr/bin/env python3
"""Import cycles between the modules of a Rust crate: module-cycles.py SRC_DIR

A module depends on another when it names it through `crate::` or `super::` outside its
tests. A child naming its parent (or an ancestor) is not counted: that is how Rust modules
reach what their parent declares. Prints every cycle and exits 1 if there is one.
crates/recompress keeps its layers acyclic (analysis above rebuild above the models above
the deflate core); scripts/test.sh runs this on it.
"""
import os
import re
import sys


def modules(src):
    """module path -> the paths (tuples) it names through crate:: or super::"""
    found = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            text = open(path, encoding="utf-8").read()
            tests = text.find("#[cfg(test)]\nmod tests")
            if tests >= 0:
                text = text[:tests]
            named = set()
            for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
                rest = m.group(2).strip(":").split("::")
                named.add(tuple(rest if m.group(1) == "crate" else parts[:-1] + rest))
            found["::".join(parts)] = named
    return found


def graph(found):
    names = set(found)

    def owner(path):  # the longest prefix of `path` that is a module
        for k in range(len(path), 0, -1):
            name = "::".join(path[:k])
            if name in names:
                return name
        return None

    edges = {n: set() for n in names}
    for name, named in found.items():
        for path in named:
            dep = owner(path)
            if dep and dep != name and not name.startswith(dep + "::"):
                edges[name].add(dep)
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    src = sys.argv[1]
    found = cycles(graph(modules(src)))
    for c in found:
        print("import cycle:", " <-> ".join(c))
    if found:
        sys.exit(1)
    print(f"no import cycles between the modules of {src}")


if __name__ == "__main__":
    main()
