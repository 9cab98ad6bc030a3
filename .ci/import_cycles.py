#!/usr/bin/env python3
"""Lists the files of a crate that import each other, and longer import cycles.

Usage: .ci/import_cycles.py crates/*/src [crates/*/tests]   (exit status 1 when any is found)

A file imports another when it names an item of the other through `crate::`, `super::`, `self::`
or a child module's name (in `use` lines and in paths anywhere, test modules included). A path
is resolved to the file that defines the item, following re-exports (`pub use`); a re-export
itself is what a module offers, not what it needs, so it does not count as an import, and
neither does a `mod` declaration (unless the file uses the re-exported name itself). Comments are ignored. Text-based: macros that expand elsewhere
count where they are written. The crate root (`lib.rs`, `main.rs`) is left out: it declares the
modules and assembles what they offer, and its own items are the crate's shared vocabulary.
"""
import os
import re
import sys
from collections import defaultdict

ITEM = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+|unsafe\s+|const\s+)*"
    r"(?:fn|struct|enum|trait|const|static|type|union|macro_rules!)\s+([A-Za-z_]\w*)",
    re.M,
)
USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)
PUB_USE = re.compile(r"^\s*pub(?:\([^)]*\))?\s+use\s+[^;]+;", re.M)
PATH = re.compile(r"\b((?:crate|super|self)(?:::(?:[A-Za-z_]\w*|\{[^;]*?\}))+)", re.S)


def modules(src):
    """Module path (a tuple) -> file."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel in (["lib"], ["main"]):
                key = ()
            elif rel[-1] == "mod":
                key = tuple(rel[:-1])
            else:
                key = tuple(rel)
            mods[key] = path
    return mods


def expand(path):
    """`a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`."""
    m = re.match(r"(.*?)::\{(.*)\}$", path, re.S)
    if not m:
        return [path]
    head, body = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in body:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [q for p in parts if p.strip() for q in expand(head + "::" + p.strip())]


def segments(path):
    """The path's names, without an `as` alias, and the name it binds."""
    path = re.sub(r"\s+", " ", path).strip()
    alias = None
    m = re.match(r"(.*?)\s+as\s+(\w+)$", path)
    if m:
        path, alias = m.group(1), m.group(2)
    segs = [s.strip() for s in path.split("::") if s.strip()]
    return segs, alias or segs[-1]


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


class Crate:
    def __init__(self, src):
        self.mods = modules(src)
        self.defs, self.uses = {}, {}
        for key, path in self.mods.items():
            text = strip_comments(open(path, encoding="utf-8").read())
            self.defs[key] = set(ITEM.findall(text))
            names = {}
            for m in USE.finditer(text):
                for p in expand(m.group(1)):
                    segs, name = segments(p)
                    if name not in ("*", "self"):
                        names[name] = segs
            self.uses[key] = names

    def resolve(self, segs, here, depth=0):
        """The module whose file defines what `segs` names, or None outside the crate."""
        if segs[0] == "crate":
            base, rest = (), segs[1:]
        elif segs[0] in ("super", "self"):
            base, rest = here, segs
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    base = base[:-1]
                rest = rest[1:]
        elif here + (segs[0],) in self.mods:
            base, rest = here, segs
        else:
            return None
        found, used = base, 0
        for i in range(1, len(rest) + 1):
            if base + tuple(rest[:i]) not in self.mods:
                break
            found, used = base + tuple(rest[:i]), i
        rest = rest[used:]
        if rest and depth < 8 and rest[0] not in self.defs.get(found, ()):
            via = self.uses.get(found, {}).get(rest[0])
            if via:
                target = self.resolve(via + list(rest[1:]), found, depth + 1)
                if target is not None:
                    return target
        return found

    def graph(self):
        g = defaultdict(set)
        for key, path in self.mods.items():
            full = strip_comments(open(path, encoding="utf-8").read())
            text = PUB_USE.sub("", full)
            paths = [p for m in PATH.finditer(text) for p in expand(m.group(1))]
            # A re-exported name the file also uses itself is an import too.
            for m in PUB_USE.finditer(full):
                for p in expand(re.sub(r"^\s*pub(?:\([^)]*\))?\s+use\s+", "", m.group(0))[:-1]):
                    segs, name = segments(p)
                    if re.search(r"\b" + re.escape(name) + r"\b", text):
                        paths.append("::".join(segs))
            paths += [
                p
                for m in USE.finditer(text)
                for p in expand(m.group(1))
                if key + (p.split("::")[0].strip(),) in self.mods
            ]
            for p in paths:
                target = self.resolve(segments(p)[0], key)
                other = self.mods.get(target) if target is not None else None
                if other and other != path and () not in (key, target):
                    g[path].add(other)
        return g


def cycles(g, nodes):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
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

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main(folders):
    found = 0
    for src in folders:
        crate = Crate(src)
        g = crate.graph()
        pairs = sorted({tuple(sorted((a, b))) for a in g for b in g[a] if a in g.get(b, ())})
        for a, b in pairs:
            print(f"PAIR  {a} <-> {b}")
        longer = [c for c in cycles(g, sorted(crate.mods.values())) if len(c) > 2]
        for comp in longer:
            print("CYCLE " + " -> ".join(comp))
        found += len(pairs) + len(longer)
    print(f"{found} import cycle(s) in {len(folders)} source folder(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
