#!/usr/bin/env python3
"""Fail when the modules of the given folders depend on each other in a cycle.

Usage: check_include_graph.py [--calls DIR]... ROOT DIR [DIR...]
       (e.g. --calls handlers --calls server ROOT registry handlers server)
       check_include_graph.py --self-test

A module is a .c file with the header of the same name beside it (handlers/backends.c and
handlers/backends.h are the module handlers/backends). Every .c and .h file under the DIRs
(recursively; whatever files exist, none is listed here) is read. Module A depends on module
B when
  - a file of A includes a header of B (#include "dir/b.h", from ROOT or beside the file), or
  - inside the --calls folders: a .c file of A calls a function defined in B's .c file (names
    read from the sources with comments and strings removed). This finds cycles that one
    header shared by several .c files hides (handlers/api.h once declared the functions of
    seven files). Folders built as one component behind a shared private header (c-ares
    style, as registry/ may be) are left out of --calls: there only #include lines count.
Two exceptions keep the graph about dependencies rather than mentions:
  - A header without a .c of its own (an interface or shared types, e.g. registry/provider.h,
    handlers/api.h) is not a module: what it includes counts for the modules including it.
    So the registry including provider.h, which includes registry.h, is no cycle, while two
    modules reaching each other through such a header still are.
  - A function declared in a header of another folder than its definition is an interface
    that folder owns and the definer implements (api_async_complete: declared in
    handlers/api.h, defined in server/httpd.c); calling it is no dependency on the definer.
Headers that include each other in a loop are reported too.

Prints each cycle with the #include lines and calls that make it, and exits 1; exits 0 with
a one-line summary otherwise. --self-test checks the checker on small made-up trees.
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)
# A function definition at column 0: type, name, parameters, then the body's brace.
DEFINITION = re.compile(r'^(static[ \t]+)?(?!typedef\b)[A-Za-z_][\w \t*]*?\b(\w+)'
                        r'[ \t]*\((?:[^;{}()]|\([^;{}()]*\))*\)[ \t\n]*\{', re.M)
DECLARATION = r'\b{}[ \t]*\('
IDENT = re.compile(r'\b[A-Za-z_]\w*\b')
KEYWORDS = {'if', 'for', 'while', 'switch', 'return', 'sizeof', 'do', 'else'}


def strip_c(text):
    """Comments and string/char literals blanked out; line breaks kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(c + ' ' * (j - i - 2) + c if j - i >= 2 else ' ' * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def line_of(text, pos):
    return text.count('\n', 0, pos) + 1


class Tree:
    def __init__(self, root, dirs, call_dirs=()):
        self.root = root
        self.call_dirs = [d.rstrip('/') + '/' for d in call_dirs]
        self.files = {}  # relative path -> text
        for d in dirs:
            for base, _, names in os.walk(os.path.join(root, d)):
                for name in sorted(names):
                    if name.endswith(('.c', '.h')):
                        path = os.path.join(base, name)
                        rel = os.path.relpath(path, root).replace(os.sep, '/')
                        with open(path, encoding='utf-8', errors='replace') as f:
                            self.files[rel] = f.read()
        self.stem_has_c = {p[:-2] for p in self.files if p.endswith('.c')}
        self.clean = {p: strip_c(t) for p, t in self.files.items()}

    def module(self, path):
        """The module of a file, or None for a header without a .c of its own."""
        stem = path[:-2]
        return stem if stem in self.stem_has_c else None

    def includes(self, path):
        """[(included file, line)] for the quoted includes that name a scanned file."""
        out = []
        for m in INCLUDE.finditer(self.files[path]):
            target = m.group(1)
            beside = os.path.normpath(os.path.join(os.path.dirname(path), target))
            for cand in (target, beside.replace(os.sep, '/')):
                if cand in self.files:
                    out.append((cand, line_of(self.files[path], m.start())))
                    break
        return out

    def header_loops(self):
        """Cycles among the files' own #include lines (headers only can loop)."""
        graph = {p: [t for t, _ in self.includes(p)] for p in self.files}
        return [c for c in cycles(graph) if len(c) > 1]

    def edges(self):
        """{module: {module: reason}} for the dependencies described in the docstring."""
        deps = {m: {} for m in self.stem_has_c}

        def reach(path, via, seen, out):
            # Follow includes through headers that are no module until a module is met.
            for target, line in self.includes(path):
                mod = self.module(target)
                why = via + [f'{path}:{line} includes {target}']
                if mod is not None:
                    out.setdefault(mod, ' -> '.join(why))
                elif target not in seen:
                    seen.add(target)
                    reach(target, why, seen, out)

        for path in sorted(self.files):
            mod = self.module(path)
            if mod is None:
                continue
            found = {}
            reach(path, [], {path}, found)
            for target, why in found.items():
                if target != mod:
                    deps[mod].setdefault(target, why)

        defined = {}  # function -> the .c defining it (not static)
        local = {}    # .c -> every function it defines (a static one hides another's)
        for path, text in self.clean.items():
            if path.endswith('.c'):
                local[path] = set()
                for m in DEFINITION.finditer(text):
                    if m.group(2) in KEYWORDS:
                        continue
                    local[path].add(m.group(2))
                    if not m.group(1):
                        defined.setdefault(m.group(2), path)
        headers = [p for p in self.clean if p.endswith('.h')]
        callable_ = {}
        for fn, path in defined.items():
            folder = os.path.dirname(path)
            pattern = re.compile(DECLARATION.format(re.escape(fn)))
            declared_in = [h for h in headers if pattern.search(self.clean[h])]
            if any(os.path.dirname(h) != folder for h in declared_in):
                continue  # an interface another folder owns
            callable_[fn] = path
        def calls_count(path):
            return any(path.startswith(d) for d in self.call_dirs)

        for path, text in self.clean.items():
            if not path.endswith('.c') or not calls_count(path):
                continue
            mod = path[:-2]
            used = set(IDENT.findall(text)) - local[path]
            for fn in sorted(used & callable_.keys()):
                target = callable_[fn][:-2]
                if target != mod and calls_count(callable_[fn]):
                    deps[mod].setdefault(target, f'{path} calls {fn}() of {callable_[fn]}')
        return deps


def cycles(graph):
    """Strongly connected components (Tarjan), each as a list of nodes; sizes > 1 and
    self-loops are what callers treat as cycles."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def one_cycle(graph, comp):
    """A simple cycle through the first node of a strongly connected component."""
    members, start = set(comp), comp[0]
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in members and w not in prev:
                prev[w] = v
                queue.append(w)
    return comp + [start]


def check(root, dirs, call_dirs=(), out=sys.stdout):
    """Print the verdict; return the number of cycles found."""
    tree = Tree(root, dirs, call_dirs)
    deps = tree.edges()
    found = 0
    for comp in cycles({m: set(d) for m, d in deps.items()}):
        if len(comp) < 2:
            continue
        found += 1
        path = one_cycle({m: set(d) for m, d in deps.items()}, comp)
        print(f'cycle among modules {", ".join(comp)}:', file=out)
        for a, b in zip(path, path[1:]):
            print(f'  {a} -> {b}: {deps[a][b]}', file=out)
    for loop in tree.header_loops():
        found += 1
        print(f'#include loop among {", ".join(loop)}', file=out)
    if not found:
        nedges = sum(len(d) for d in deps.values())
        calls = f' (calls in {", ".join(call_dirs)})' if call_dirs else ''
        print(f'include graph of {", ".join(dirs)}{calls}: {len(deps)} modules, {nedges} '
              'dependencies, no cycle', file=out)
    return found


def self_test():
    cases = [
        ('two modules calling each other through their headers', 1, {
            'h/a.c': '#include "h/a.h"\n#include "h/b.h"\nvoid a(void) { b(); }\n',
            'h/a.h': 'void a(void);\n',
            'h/b.c': '#include "h/b.h"\n#include "h/a.h"\nvoid b(void) { a(); }\n',
            'h/b.h': 'void b(void);\n'}),
        ('one shared header hiding a call cycle (the old handlers/api.h)', 1, {
            'h/api.h': 'void one(void);\nvoid two(void);\n',
            'h/one.c': '#include "h/api.h"\nvoid one(void)\n{\n    two();\n}\n',
            'h/two.c': '#include "h/api.h"\nvoid two(void)\n{\n    one();\n}\n'}),
        ('a cycle through a header that is no module', 1, {
            'r/x.c': '#include "r/iface.h"\n',
            'r/iface.h': '#include "r/y.h"\n',
            'r/y.c': '#include "r/y.h"\n#include "r/x.h"\n',
            'r/y.h': '', 'r/x.h': ''}),
        ('an interface header naming its user (registry and provider.h) is no cycle', 0, {
            'r/reg.c': '#include "r/reg.h"\n#include "r/prov.h"\n'
                       'int reg_copy(int x) { return x; }\n',
            'r/reg.h': 'int reg_copy(int x);\n',
            'r/prov.h': '#include "r/reg.h"\nstruct prov { int (*apply)(int); };\n',
            'r/mem.c': '#include "r/prov.h"\nstatic int apply(int x) { return reg_copy(x); }\n'}),
        ('a callback interface owned by the caller folder is no cycle', 0, {
            'h/api.h': 'void api_complete(int);\n',
            'h/back.c': '#include "h/api.h"\n#include "h/back.h"\n'
                        'void back_get(void) { api_complete(1); }\n',
            'h/back.h': 'void back_get(void);\n',
            's/httpd.c': '#include "h/api.h"\n#include "h/back.h"\n'
                         'void api_complete(int x) { (void)x; }\n'
                         'static void route(void) { back_get(); }\n'}),
        ('headers including each other', 1, {
            'h/p.h': '#include "h/q.h"\n', 'h/q.h': '#include "h/p.h"\n'}),
        ('a static function named like another module\'s is no call to it', 0, {
            'h/a.c': '#include "h/a.h"\nvoid a(void) { b(); }\nstatic void b(void) {}\n',
            'h/a.h': 'void a(void);\n',
            'h/b.c': '#include "h/b.h"\n#include "h/a.h"\nvoid b(void) { a(); }\n',
            'h/b.h': 'void b(void);\n'}),
        ('a component behind a private header, outside --calls, is no cycle', 0, {
            'r/internal.h': 'void one(void);\nvoid two(void);\n',
            'r/one.c': '#include "r/internal.h"\nvoid one(void)\n{\n    two();\n}\n',
            'r/two.c': '#include "r/internal.h"\nvoid two(void)\n{\n    one();\n}\n'}),
        ('mentions in comments and strings are no calls', 0, {
            'h/a.c': '#include "h/a.h"\nvoid a(void) { /* b() */ const char *s = "b()"; }\n',
            'h/a.h': 'void a(void);\n',
            'h/b.c': '#include "h/b.h"\n#include "h/a.h"\nvoid b(void) { a(); }\n',
            'h/b.h': 'void b(void);\n'}),
    ]
    failures = 0
    call_dirs = ('h', 's')  # r/ stands for a folder checked by its #include lines only
    for name, want, files in cases:
        with tempfile.TemporaryDirectory() as root:
            for rel, text in files.items():
                os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(root, rel), 'w') as f:
                    f.write(text)
            dirs = sorted({rel.split('/')[0] for rel in files})
            with open(os.devnull, 'w') as null:
                got = check(root, dirs, call_dirs, null)
        ok = (got > 0) == (want > 0)
        failures += not ok
        print(f'{"ok  " if ok else "FAIL"} {name}: {got} cycle(s), want {want}')
    return failures


def main(argv):
    args, call_dirs = argv[1:], []
    if args == ['--self-test']:
        return 1 if self_test() else 0
    while len(args) >= 2 and args[0] == '--calls':
        call_dirs.append(args[1])
        args = args[2:]
    if len(args) < 2 or args[0].startswith('-'):
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    root, dirs = args[0], args[1:]
    missing = [d for d in dirs + call_dirs if not os.path.isdir(os.path.join(root, d))]
    if missing:
        print(f'no such folder under {root}: {", ".join(missing)}', file=sys.stderr)
        return 2
    return 1 if check(root, dirs, call_dirs) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
