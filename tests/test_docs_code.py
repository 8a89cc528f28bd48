"""The commands and Python snippets of README.md and docs/*.md still match the code (issue 25: make drift hard).

* every ``phylocl ...`` (and ``python -m phylocl.cli ...``) command of a fenced block parses with the real parser
  (``phylocl.cli.build_parser``), and names its options exactly (no abbreviations);
* every inline `phylocl ...` code span names a subcommand that exists and options that subcommand has, and parses
  but for what it leaves out (spans are often partial: `phylocl search --index`);
* every ``python benchmarks/X.py ...`` (and ``python -m phylocl.X``) command names a script that exists, a
  subcommand it defines (if it has any) and options it defines: read from the script's source (running ``--help``
  costs up to 2 s a script for the imports);
* every alternative the docs offer for an option with choices (`--format tsv|blast6`) is one of them;
* `python -c "..."` one-liners compile; repository paths the docs name, their relative links and #sections exist;
* every fenced ``python`` block runs, in a temporary folder, after a short prelude (below) that defines what the
  doc leaves to the reader (``sequences``, ``z_a``...), and the values its comments promise are checked;
* sections named in words (`docs/retrieval.md, "Windows"`, also in help texts and docstrings) exist, every dotted
  ``phylocl.x.y`` name imports, evaluate's documented JSON keys are its keys, and the README's first table is what
  its own commands print (the `kmer:3` row always; the trained encoder's row with ``-m slow``, ~30 s).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "CHANGELOG.md", REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# Doc commands that cannot parse on purpose, {(doc file, shlex.join(argv)): reason}; none today. Keep it short:
# prefer fixing the doc.
SKIP: dict[tuple[str, str], str] = {}


# ---------------------------------------------------------------------------------------------------- extraction


def fenced_blocks(path: Path) -> list[tuple[str, int, str]]:
    """``(language, line of the first code line, code)`` of each fenced block of a Markdown file."""
    blocks, lines, i = [], path.read_text(encoding="utf-8").splitlines(), 0
    while i < len(lines):
        m = re.match(r"\s*```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if re.match(r"\s*```\s*$", lines[j])), None)
        assert end is not None, f"{path.name}:{i + 1}: fenced block never closed"
        stray = [j + 1 for j in range(i + 1, end) if lines[j].lstrip().startswith("```")]
        assert not stray, f"{path.name}:{stray[0]}: ``` with text after it inside a block (a closing fence?)"
        blocks.append((m.group(1), i + 2, "\n".join(lines[i + 1:end])))
        i = end + 1
    return blocks


def inline_spans(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of each inline code span outside the fenced blocks (spans may wrap across lines)."""
    text = re.sub(r"(?ms)^\s*```.*?^\s*```\s*$", lambda m: "\n" * m.group(0).count("\n"), path.read_text("utf-8"))
    return [(text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()))
            for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", text)]


def split_commands(line: str, variables: dict[str, str]) -> list[list[str]]:
    """The argv of each simple command of one shell line (continuations already joined), as the docs write them.

    ``$(...)``, ``<(...)`` and unknown ``$X`` become ``X`` (a placeholder that parses as a string); ``$X``
    assigned earlier (``S="--set a=1"``, ``for t in 1 2``) expands to its value; ``[--opt V]`` keeps its content;
    ``a|b`` and ``(A | B)`` keep their first alternative; ``...`` is dropped; ``&&``, ``;``, ``|`` split commands;
    comments, redirections, ``do``/``time`` and ``VAR=value`` prefixes are dropped. Assignments update
    ``variables``."""
    line = re.sub(r"[$<]\([^()]*\)", "X", line)  # $(basename $m), <(zcat a.fa.gz)
    variables.update(re.findall(r"\bfor (\w+) in (\S+)", line))  # for t in 1 2; do ... $t: its first value
    line = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), "X"), line)
    line = re.sub(r"\(([^()|]*?) \| [^()]*\)", r"\1", line)  # (--db DB.fasta | --index INDEX): the first
    line = re.sub(r"(?<=[^\s|\\])\\?\|[^\s\[\]()]*", "", line)  # protein|dna, protein\|dna: the first
    while re.search(r"\[(-|\.\.\.)[^\[\]]*\]", line):  # [--opt V], innermost first
        line = re.sub(r"\[((?:-|\.\.\.)[^\[\]]*)\]", r"\1", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, argv, tokens = [], [], iter(list(lexer))
    for tok in tokens:
        if tok in (">", ">>", "<", "2>"):
            next(tokens, None)
        elif set(tok) <= set("();&|"):
            commands.append(argv)
            argv = []
        else:
            argv.append(tok.removesuffix("..."))
    commands.append(argv)
    result = []
    for argv in commands:
        argv = [a for a in argv if a]
        while argv and (argv[0] in ("do", "then", "else", "time", "/usr/bin/time")
                        or re.match(r"[A-Za-z_]\w*=", argv[0])):
            if len(argv) == 1 and "=" in argv[0]:
                name, value = argv[0].split("=", 1)
                variables[name] = value
            argv = argv[1:]
        if argv:
            result.append(argv)
    return result


def doc_commands() -> list[tuple[str, str, list[str]]]:
    """``(where, kind, argv)`` of every command of interest: ``where`` is ``file:line``, ``kind`` is
    ``fenced`` (a whole command) or ``inline`` (a code span, often partial)."""
    found = []
    for path in DOCS:
        variables: dict[str, str] = {}  # a block may use $S set by an earlier block of the same doc
        for lang, start, code in fenced_blocks(path):
            if lang not in ("", "bash", "sh", "shell", "console"):
                continue
            lines = code.split("\n")
            k = 0
            while k < len(lines):
                first, text = k, lines[k]
                while text.endswith("\\") and k + 1 < len(lines):
                    k += 1
                    text = text[:-1] + " " + lines[k].strip()
                k += 1
                for argv in split_commands(text, variables):
                    found.append((f"{path.name}:{start + first}", "fenced", argv))
        for line, span in inline_spans(path):
            if re.match(r"(phylocl |python3? (-m phylocl|benchmarks/))", span):
                for argv in split_commands(span, {}):
                    found.append((f"{path.name}:{line}", "inline", argv))
    return [c for c in found if command_kind(c[2])]


def command_kind(argv: list[str]) -> str | None:
    """``phylocl`` (our CLI), ``script`` (a benchmark or ``python -m`` module) or None (not ours: pip, diamond)."""
    if len(argv) > 1 and argv[1].endswith(":"):  # `phylocl inspect: error: ...`: a message, not a command
        return None
    if argv[0] == "phylocl" or argv[:3] in (["python", "-m", "phylocl.cli"], ["python3", "-m", "phylocl.cli"]):
        return "phylocl"
    module = argv[2] if argv[1:2] == ["-m"] and len(argv) > 2 else ""
    if argv[0] in ("python", "python3", "bash") and len(argv) > 1 and (
            argv[1].startswith("benchmarks/") or module.startswith("phylocl.")):
        return "script"
    return None


# ---------------------------------------------------------------------------------------------------- commands

COMMANDS = doc_commands()
PHYLOCL = [c for c in COMMANDS if command_kind(c[2]) == "phylocl"]
SCRIPTS = [c for c in COMMANDS if command_kind(c[2]) == "script"]


def _id(c):
    return f"{c[0]} {' '.join(c[2])[:60]}"


@pytest.fixture(scope="module")
def subparsers() -> dict[str, argparse.ArgumentParser]:
    from phylocl.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **action.choices}


def _options(argv: list[str]) -> list[str]:
    """The option names an argv uses (``--tools=a,b`` -> ``--tools``; ``-k``)."""
    return [a.split("=", 1)[0] for a in argv if re.match(r"--?[A-Za-z]", a) and not re.match(r"-[A-Za-z]\w", a)]


def _parse_error(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """The error line of ``parser.parse_args(args)``, or None when it parses."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(args)
        except SystemExit as exit_:
            if exit_.code != 0:
                return err.getvalue().strip().splitlines()[-1]
    return None


@pytest.mark.parametrize("where, kind, argv", PHYLOCL, ids=[_id(c) for c in PHYLOCL])
def test_documented_phylocl_command_parses(where, kind, argv, subparsers):
    """Fenced commands parse whole; inline spans may leave out required options or an option's value
    (`phylocl search --index`) but not name an option or a choice that does not exist."""
    args = argv[3:] if argv[0].startswith("python") else argv[1:]
    shown = f"{where}: `{shlex.join(argv)}`"
    if (where.split(":")[0], shlex.join(argv)) in SKIP:
        pytest.skip(SKIP[where.split(":")[0], shlex.join(argv)])
    if not args or args[0].startswith("-"):  # `phylocl --help`, `phylocl --version`
        assert set(args) <= {"--help", "-h", "--version"}, shown
        return
    for command in args[0].split("/"):  # `phylocl embed/search/evaluate --precision`
        assert command in subparsers, f"{shown}: no subcommand {command!r}"
        known = subparsers[command]._option_string_actions
        unknown = [o for o in _options(args[1:]) if o not in known]
        assert not unknown, f"{shown}: `phylocl {command}` has no option {', '.join(unknown)}"
    if args[0] not in subparsers:
        return
    typed = subparsers[args[0]]._option_string_actions
    args = [  # a placeholder of a number (`--windows W`, `--threads N`) as a number
        "1" if re.fullmatch(r"[A-Z]", a) and getattr(typed.get(prev), "type", None) in (int, float) else a
        for prev, a in zip(["", *args], args)]
    error = _parse_error(subparsers[""], args)
    if kind == "inline" and error and re.search(r"(are|is) required|expected (one|at least one) argument", error):
        error = None
    assert error is None, f"{shown} does not parse: {error}"


def _script_path(argv: list[str]) -> Path:
    if argv[1] == "-m":
        return REPO / (argv[2].replace(".", "/") + ".py")
    return REPO / argv[1]


@pytest.mark.parametrize("where, kind, argv", SCRIPTS, ids=[_id(c) for c in SCRIPTS])
def test_documented_script_exists_and_defines_its_options(where, kind, argv):
    shown = f"{where}: `{shlex.join(argv)}`"
    path = _script_path(argv)
    assert path.is_file(), f"{shown}: no file {path.relative_to(REPO)}"
    source = path.read_text(encoding="utf-8")
    rest = argv[3:] if argv[1] == "-m" else argv[2:]
    subcommands = re.findall(r"add_parser\(\s*[\"']([\w-]+)[\"']", source)
    if subcommands and rest and not rest[0].startswith("-"):
        assert rest[0] in subcommands, f"{shown}: {path.name} has no subcommand {rest[0]!r} ({subcommands})"
    if path.suffix == ".py":
        unknown = [o for o in _options(rest) if not re.search(rf"[\"']{re.escape(o)}[\"']", source)]
        assert not unknown, f"{shown}: {path.name} defines no option {', '.join(unknown)}"


def test_the_docs_have_commands_to_check():
    assert len(PHYLOCL) > 100 and len(SCRIPTS) > 50


def test_documented_choices_exist(subparsers):
    """`--format tsv|blast6`, `--alphabet auto|protein|dna`, `--type flat|ivf|hnsw|ivfpq`: every alternative the docs
    offer is a choice of that option (commands keep only the first alternative)."""
    choices: dict[str, set] = {}
    for parser in subparsers.values():
        for name, action in parser._option_string_actions.items():
            choices.setdefault(name, set()).update(action.choices or ())
    checked = 0
    for path in DOCS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for opt, alternatives in re.findall(r"(--[a-z][\w-]*)[ =]([\w.-]+(?:\\?\|[\w.-]+)+)", line):
                if choices.get(opt):
                    wrong = set(re.split(r"\\?\|", alternatives)) - choices[opt]
                    assert not wrong, f"{path.name}:{n}: {opt} has no choice {', '.join(sorted(wrong))}"
                    checked += 1
    assert checked > 5


def test_documented_python_c_commands_compile_and_import_what_exists():
    """`python -c "...; from ablation import decoy_sequences"` (docs/retrieval.md): valid Python whose names from
    benchmarks/ exist."""
    checked = 0
    for path in DOCS:
        for lang, start, code in fenced_blocks(path):
            for m in re.finditer(r'python3? -c "((?:[^"\\]|\\.)*)"', code.replace("\\\n", "")):
                source = m.group(1)
                compile(source, f"{path.name}:{start}", "exec")
                for module, name in re.findall(r"from (\w+) import (\w+)", source):
                    script = REPO / "benchmarks" / f"{module}.py"
                    if script.is_file():
                        assert re.search(rf"^def {name}\b|^{name} =", script.read_text(), re.M), \
                            f"{path.name}:{start}: benchmarks/{module}.py has no {name}"
                checked += 1
    assert checked


@functools.cache
def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as -, -1 on repeats."""
    text = re.sub(r"(?ms)^\s*```.*?^\s*```\s*$", "", path.read_text(encoding="utf-8"))  # no # comments of code
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.*)", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_documented_paths_and_links_exist():
    """`configs/x.yaml`, `benchmarks/x.py`, `phylocl/x/y.py` named in the docs, and their relative links (with the
    #section they point to) exist."""
    for path in DOCS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in re.findall(r"(?<![\w./-])((?:configs|benchmarks|examples|phylocl|datasets|tests|docs)/"
                                   r"[\w./-]*\w\.(?:py|sh|yaml|json|png|md|fasta|tsv))", line):
                assert (REPO / name).exists(), f"{path.name}:{n}: no file {name}"
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:
                    continue
                file, _, anchor = target.partition("#")
                linked = path.parent / file if file else path
                assert linked.exists(), f"{path.name}:{n}: link to a missing {file}"
                assert not anchor or anchor in _anchors(linked), f"{path.name}:{n}: {linked.name} has no #{anchor}"


def test_sections_named_in_words_exist():
    """`(docs/retrieval.md, "Windows")`, in the docs and in the code's help texts and docstrings (which cannot link):
    the page has a heading, or a bold paragraph label, that begins with those words."""
    sources = [*DOCS, *sorted((REPO / "phylocl").rglob("*.py")), *sorted((REPO / "benchmarks").glob("*.py")),
               *sorted((REPO / "examples").glob("*.py"))]
    pattern = re.compile(r"((?:docs/)?[\w-]+\.md)(?:#[\w-]+)?\)?,?\s+[\"']([A-Z][^\"'\n]{1,60})[\"']")
    checked = 0
    for path in sources:
        for doc, name in pattern.findall(" ".join(path.read_text(encoding="utf-8").split())):
            page = next((p for p in (REPO / doc, REPO / "docs" / Path(doc).name) if p.is_file()), None)
            assert page, f"{path.relative_to(REPO)}: no page {doc}"
            text = " ".join(page.read_text(encoding="utf-8").split())
            headings = re.findall(r"^#{1,6} (.*)", page.read_text(encoding="utf-8"), re.M)
            assert f"**{name}" in text or any(h.lower().startswith(name.lower()) for h in headings), \
                f"{path.relative_to(REPO)}: {doc} has no section {name!r}"
            checked += 1
    assert checked > 10


# Names the docs give as gone ("`phylocl.progress` ... are gone").
GONE = {"phylocl.progress", "phylocl.training.progress"}


def test_dotted_names_in_the_docs_import():
    """`phylocl.models.kmer`, `phylocl.heap.keep_freed_memory()`, `phylocl.workflows.callbacks.StepProgress`: every
    dotted name the docs write is a module, or an attribute of one, that exists."""
    import importlib

    def resolve(name: str) -> None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[i:]:
                obj = getattr(obj, attribute)
            return

    names = {}
    for path in DOCS:
        for name in re.findall(r"(?<![\w/.-])(phylocl(?:\.[A-Za-z_]\w*)+)", path.read_text(encoding="utf-8")):
            if not name.endswith((".md", ".py", ".yaml")):
                names.setdefault(name, path.name)
    assert len(names) > 50
    for name, doc in sorted(names.items()):
        if name in GONE:
            continue
        try:
            resolve(name)
        except AttributeError as error:
            pytest.fail(f"{doc}: `{name}` does not exist ({error})")


def test_evaluate_json_keys_are_the_documented_ones(tmp_path):
    """docs/retrieval.md lists the keys of `phylocl evaluate --json` (with `--align`): those, no more, no fewer."""
    import json

    from phylocl.cli import main

    text = (REPO / "docs" / "retrieval.md").read_text(encoding="utf-8")
    block = re.search(r'\n +(\{"dataset", .*?"wall_seconds"\})\n', text, re.S)
    assert block, "docs/retrieval.md no longer lists evaluate's JSON keys"
    documented = set(re.findall(r'"([\w@]+)"', block.group(1))) - {"recall@k"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["evaluate", "--model", "kmer:3", "--data", str(REPO / "datasets" / "example-mini-mit" / "protein"),
              "--json", "--align", "--quiet", "--threads", "1"])
    result = json.loads(out.getvalue())
    assert documented == {*result, *result["aligned"], *result["prefilter_recall"]}


def _readme_main_job() -> tuple[list[list[str]], dict[str, list[float]]]:
    """The README's opening command (its ``phylocl`` argvs) and its table: row label -> [MAP@R, AUC1, top-1,
    recall@10] as printed there."""
    path = REPO / "README.md"
    code = next(code for _, _, code in fenced_blocks(path) if "phylocl simulate" in code)
    commands = [argv for argv in split_commands(code, {}) if argv[0] == "phylocl"]
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| 24 held-out families"))
    assert lines[header].split("|")[2:6] == [" MAP@R ", " AUC1 ", " top-1 ", " recall@10 "], lines[header]
    rows = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(c) for c in cells[1:5]]
    return commands, rows


def _figures(argv: list[str]) -> list[float]:
    """MAP@R, AUC1, top-1, recall@10 of a `phylocl evaluate` argv, rounded to the README's 3 digits."""
    import json

    from phylocl.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main([*argv[1:], "--json", "--quiet"])
    result = json.loads(out.getvalue())
    return [round(result[k], 3) for k in ("map_r", "auc1", "top1", "recall@10")]


def _run(argv: list[str]) -> None:
    from phylocl.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv[1:]) in (0, None), argv


@pytest.fixture
def readme_folder(tmp_path, monkeypatch):
    """A folder where the README's relative paths (configs/, runs/) work, as in a checkout."""
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def test_readme_main_job_baseline_row_is_what_evaluate_prints(readme_folder):
    """The `kmer:3` row of the README's first table, from its own simulate and evaluate commands (the split from
    configs/example.yaml, which runs/example/config.yaml copies, so that no training is needed: 1-2 s)."""
    commands, rows = _readme_main_job()
    simulate = next(a for a in commands if a[1] == "simulate")
    baseline = next(a for a in commands if a[1] == "evaluate" and "kmer:3" in a)
    _run(simulate)
    at = baseline.index("--split-config") + 1
    assert baseline[at] == "runs/example/config.yaml"
    baseline = [*baseline[:at], "configs/example.yaml", *baseline[at + 1:]]
    assert _figures(baseline) == rows["`kmer:3` baseline"]


@pytest.mark.slow
def test_readme_main_job_prints_the_readme_table(readme_folder):
    """The whole opening command (simulate, train 100 steps: ~20 s, evaluate both) prints the README's figures."""
    commands, rows = _readme_main_job()
    assert [a[1] for a in commands] == ["simulate", "train", "evaluate", "evaluate"]
    _run(commands[0])
    _run(commands[1])
    trained = next(v for k, v in rows.items() if k.startswith("encoder after training"))
    assert _figures(commands[2]) == trained
    assert _figures(commands[3]) == rows["`kmer:3` baseline"]


def test_documented_signatures_of_the_public_api_hold():
    """`phylocl.InfoNCE(*, temperature=0.1, ...)`, `phylocl.Searcher(*, index, ..., self_hits=False)`: every keyword
    the docs give a public name (``phylocl.__all__``) exists, with the default they state."""
    import ast
    import inspect

    import phylocl

    checked = 0
    for path in DOCS:
        text = " ".join(path.read_text(encoding="utf-8").split())
        for name, args in re.findall(r"`phylocl\.(\w+)\(([^`()]*(?:\([^`()]*\)[^`()]*)*)\)(?: -> [^`]*)?`", text):
            if name not in phylocl.__all__ or "*" not in args:
                continue  # a call, not a signature
            parameters = inspect.signature(getattr(phylocl, name)).parameters
            for arg in re.split(r",\s*(?![^()]*\))", args):
                m = re.fullmatch(r"\s*\**(\w+)(?:=(.+?))?\s*", arg)
                if not m or arg.strip() in ("*", "**overrides"):
                    continue
                key, value = m.groups()
                assert key in parameters, f"{path.name}: phylocl.{name} has no keyword {key}"
                if value is not None and value != "...":
                    assert parameters[key].default == ast.literal_eval(value), \
                        f"{path.name}: phylocl.{name}({key}=) defaults to {parameters[key].default!r}, not {value}"
                checked += 1
    assert checked > 30


def test_split_commands_reads_the_shell_the_docs_write():
    variables = {"S": "--set a=1 --set b=2"}
    line = "OMP_NUM_THREADS=1 phylocl search --db d.fa -o h.tsv [--word-budget 0.2] $S  # a comment"
    assert split_commands(line, variables) == [
        ["phylocl", "search", "--db", "d.fa", "-o", "h.tsv", "--word-budget", "0.2", "--set", "a=1", "--set", "b=2"]]
    assert split_commands("cat a > b && phylocl index --type flat|ivf -o $OUT/x; python benchmarks/x.py ...", {}) \
        == [["cat", "a"], ["phylocl", "index", "--type", "flat", "-o", "X/x"], ["python", "benchmarks/x.py"]]
    assert split_commands('phylocl search (--db DB.fasta | --index INDEX) --set "m={a: 1, b: 2}"', {}) \
        == [["phylocl", "search", "--db", "DB.fasta", "--set", "m={a: 1, b: 2}"]]
    variables = {}
    assert split_commands("for p in fp32 bf16; do python benchmarks/t.py --precision $p; done", variables) \
        == [["for", "p", "in", "fp32", "bf16"], ["python", "benchmarks/t.py", "--precision", "fp32"], ["done"]]


# ---------------------------------------------------------------------------------------------------- python blocks

# What each ```python block leaves to the reader, defined before it runs; keyed by (doc, n-th python block of that
# doc). A block runs in a temporary folder holding links to datasets/ and configs/, so its paths work as written;
# device="cuda" runs as device="cpu" on a machine without CUDA.
_SEQUENCES = """
import io, torch
torch.manual_seed(0)
sequences = [s[:60] for s in phylocl.read_dataset("datasets/example-mini-mit/protein").sequences[:6]]
"""
_BATCHES = """
z_a, z_b = torch.randn(4, 16), torch.randn(4, 16)
family_ids = labels = torch.tensor([0, 1, 2, 2])
batch_a, batch_b = (phylocl.build_encoder("gmlp-tiny", alphabet="protein").tokenize(s)
                    for s in (sequences[:4], sequences[2:6]))
"""
_INDEX = """
toy = ">toy holds the docs' toy queries, so that they have hits\\nMKVLAAGIVGSTAPQRWLLKEMKVLAAGIW\\n"
Path("db.fasta").write_text(Path("datasets/example-mini-mit/protein/sequences.fasta").read_text() + toy)
phylocl.cli.main(["index", "--fasta", "db.fasta", "--model", "kmer:3", "-o", "db.index", "--quiet"])
"""
PRELUDE = {
    ("README.md", 0): _SEQUENCES + _BATCHES + _INDEX
    + "optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)\n",
    ("data.md", 0): "",
    ("encoders.md", 0): "list_of_strings = seqs = ['ACGTACGTTGCA', 'ACGTTTGA', 'GGCATCGATCGA']\n",
    ("losses.md", 0): _SEQUENCES + _BATCHES + "encoder = phylocl.build_encoder('gmlp-tiny', alphabet='protein')\n",
    ("retrieval.md", 0): """
ds = phylocl.read_dataset("datasets/example-mini-mit/protein")
chunks = [(ds.sequences[i:i + 50], ds.ids[i:i + 50], ds.families[i:i + 50]) for i in range(0, len(ds.ids), 50)]
phylocl.cli.main(["embed", "--model", "kmer:3", "--fasta", "datasets/example-mini-mit/protein/sequences.fasta",
                  "-o", "queries.npz", "--quiet"])
""",
    ("retrieval.md", 1): _SEQUENCES + _INDEX
    + "queries, f = [('q1', sequences[0]), ('q2', sequences[1])], io.StringIO()",
    ("retrieval.md", 2): _SEQUENCES + "queries, targets, candidates = sequences[:2], sequences, [[0, 1, 2], [1, 4, 5]]",
}

# What the blocks' comments promise, checked after they ran.
_UNIT_ROWS = "np.testing.assert_allclose(np.linalg.norm(np.asarray({}, dtype=np.float64), axis=1), 1, atol=1e-4)\n"
CHECKS = {
    ("README.md", 0): """
assert X.dtype == np.float32 and X.shape[0] == len(sequences)
""" + _UNIT_ROWS.format("X") + _UNIT_ROWS.format("z.detach()") + """
assert isinstance(T, torch.Tensor) and T.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
assert sorted(p.name for p in Path("my-model").iterdir()) == ["config.json", "model.safetensors"]
assert phylocl.list_models()[:4] == ["amlp-small", "gmlp-base", "gmlp-small", "gmlp-small-moe"]
assert set(batch) == {"input_ids", "attention_mask"} and batch["input_ids"].shape[0] == 2 and enc.training
assert loss.ndim == 0 and "infonce" in loss_fn.last_stats
assert all(len(x) == len(ds.ids) for x in (ds.sequences, ds.families)) and isinstance(ds.metadata, dict)
assert hits and {"query", "target", "score", "rank", "bitscore", "evalue"} <= set(hits[0])
""",
    ("data.md", 0): "assert torch.isfinite(loss)\n",
    ("encoders.md", 0): """
assert phylocl.list_models()[:4] == ["amlp-small", "gmlp-base", "gmlp-small", "gmlp-small-moe"]
assert batch["input_ids"].dtype == torch.int64 and batch["attention_mask"].dtype == torch.bool
assert tuple(z.shape) == (2, enc.config.embed_dim) and X.dtype == np.float32 and X.shape == (3, enc.config.embed_dim)
""" + _UNIT_ROWS.format("z.detach()") + """
assert isinstance(T, torch.Tensor) and enc.config.dropout == 0.0
assert re.fullmatch("[0-9a-f]{16}", enc.fingerprint()) and enc2.fingerprint() == enc.fingerprint()
""",
    ("losses.md", 0): """
assert value.ndim == 0 and {"infonce", "temperature", "pos_prob", "logit_gap"} <= set(loss.last_stats)
""",
    ("retrieval.md", 0): """
assert db.embeddings.shape == (len(ds.ids), 8000) and db.embeddings.dtype == np.float32
""" + _UNIT_ROWS.format("db.embeddings") + """
assert scores.shape == rows.shape == (len(queries.ids), 10)
assert m["n_queries"] == len(ds.ids) and 0 <= m["auc1"] <= 1 and isinstance(m["per_family"], (dict, list))
""",
    ("retrieval.md", 1): """
assert {"query", "target", "score", "rank", "bitscore", "evalue"} <= set(hits[0])
assert f.getvalue() and not f.getvalue().startswith("query")
""",
    ("retrieval.md", 2): """
assert list(bits) == sorted(bits, reverse=True) and len(targets_q0) == len(raw) == len(evalues)
assert all(hasattr(aln, a) for a in ("pident", "length", "qstart", "qend", "sstart", "send"))
""",
}

PYTHON_BLOCKS = [(path.name, n, start, code) for path in DOCS
                 for n, (_, start, code) in enumerate(b for b in fenced_blocks(path) if b[0] == "python")]


@pytest.mark.parametrize("doc, n, start, code", PYTHON_BLOCKS, ids=[f"{b[0]}:{b[2]}" for b in PYTHON_BLOCKS])
def test_documented_python_block_runs(doc, n, start, code, tmp_path, monkeypatch):
    import numpy as np
    import torch

    import phylocl
    import phylocl.cli

    assert (doc, n) in PRELUDE, f"{doc}:{start}: a new python block: add what it needs to PRELUDE (even '')"
    for name in ("datasets", "configs"):
        (tmp_path / name).symlink_to(REPO / name)
    monkeypatch.chdir(tmp_path)
    if not torch.cuda.is_available():
        code = code.replace('device="cuda"', 'device="cpu"')
    namespace = {"phylocl": phylocl, "np": np, "torch": torch, "re": re, "Path": Path}
    exec(PRELUDE[doc, n], namespace)
    exec(compile("\n" * (start - 1) + code, str(REPO / ("" if doc == "README.md" else "docs") / doc), "exec"),
         namespace)  # tracebacks name the doc's own lines
    exec(CHECKS.get((doc, n), ""), namespace)
