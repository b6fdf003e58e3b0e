"""Knights and Knaves: generator, solver, rendering, CLI, task."""

import ast
import itertools
import json

import pytest

from rlad_pl.tasks import get_task
from rlad_pl.tasks.knights_knaves import (
    NAMES,
    backtrack_trace,
    cli_generate,
    compact_answer,
    compact_cot,
    evaluate,
    generate_puzzles,
    parse_statements,
    solve,
)

SCHEMA = {"quiz", "names", "solution", "solution_text", "solution_text_format", "statements",
          "index", "cot_head", "cot_repeat_steps", "cot_foot"}


def brute_force(statements, n):
    """Independent solver: itertools over assignments, recursive evaluation."""
    return [a for a in itertools.product((True, False), repeat=n)
            if all(evaluate(s, a) == a[i] for i, s in enumerate(statements))]


def check_form(stmt, speaker, n):
    leaves = [stmt] if stmt[0] in ("telling-truth", "lying") else list(stmt[1:])
    if stmt[0] == "not":
        assert len(leaves) == 1
    elif stmt[0] in ("and", "or", "->", "<=>"):
        assert len(leaves) == 2 and leaves[0] != leaves[1]
    for leaf in leaves:
        assert leaf[0] in ("telling-truth", "lying") and 0 <= leaf[1] < n
        assert leaf != ("lying", speaker)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8])
def test_generated_puzzles_unique_and_well_formed(n):
    records = generate_puzzles(n, 200, seed=7)
    assert len(records) == 200
    keys = set()
    for i, r in enumerate(records):
        assert set(r) == SCHEMA and r["index"] == i
        statements = parse_statements(r["statements"], n)
        assert statements == ast.literal_eval(r["statements"])
        for speaker, stmt in enumerate(statements):
            check_form(stmt, speaker, n)
        assert brute_force(statements, n) == [tuple(r["solution"])]
        assert solve(statements, n) == [tuple(r["solution"])]
        assert len(set(r["names"])) == n and all(name in r["quiz"] for name in r["names"])
        assert all(name in NAMES for name in r["names"])
        keys.add(statements)
    assert len(keys) == 200


def test_two_people_stops_with_every_puzzle():
    records = generate_puzzles(2, 5000, seed=0)
    assert len(records) == 399  # all of them: checked by enumeration below
    leaves = {s: [(k, j) for k in ("telling-truth", "lying") for j in range(2)
                  if (k, j) != ("lying", s)] for s in range(2)}
    forms = {s: leaves[s] + [("not", x) for x in leaves[s]]
             + [(op, a, b) for op in ("and", "or", "->", "<=>") for a in leaves[s]
                for b in leaves[s] if a != b] for s in range(2)}
    unique = {p for p in itertools.product(forms[0], forms[1]) if len(brute_force(p, 2)) == 1}
    assert {parse_statements(r["statements"]) for r in records} == unique


def test_deterministic_and_exclude():
    a, b = generate_puzzles(4, 50, seed=3), generate_puzzles(4, 50, seed=3)
    assert a == b
    assert generate_puzzles(4, 50, seed=4) != a
    c = generate_puzzles(4, 50, seed=3, exclude=a[:25])
    assert not {r["statements"] for r in c} & {r["statements"] for r in a[:25]}


def test_solution_texts():
    r = generate_puzzles(3, 1, seed=0)[0]
    roles = ["knight" if k else "knave" for k in r["solution"]]
    expected = [f"{n} is a {x}" for n, x in zip(r["names"], roles, strict=False)]
    assert r["solution_text"] == f"{expected[0]}, {expected[1]}, and {expected[2]}."
    assert r["solution_text_format"] == "\n".join(f"({i + 1}) {e}" for i, e in enumerate(expected))


def test_backtracking_trace_reaches_the_solution():
    for r in generate_puzzles(6, 50, seed=1):
        statements = parse_statements(r["statements"])
        steps, assignment = backtrack_trace(statements, 6)
        assert [assignment[i] for i in range(6)] == r["solution"]
        assert steps[-1].kind == "assume" and r["cot_repeat_steps"]
        assert len(r["cot_repeat_steps"]) == len(steps)


def test_compact_prompt_is_frozen():
    record = {"names": ["Zoey", "Liam", "Ava"], "solution": [True, False, False],
              "statements": "(('<=>', ('lying', 1), ('lying', 2)), ('not', ('telling-truth', 0)),"
                            " ('->', ('telling-truth', 0), ('telling-truth', 2)))"}
    task = get_task("knights_knaves")
    assert task.prompt(record) == ("Zoey : Liam knave iff Ava knave . Liam : not Zoey knight . "
                                   "Ava : if Zoey knight then Ava knight . ? <think>")
    task.validate(record)
    completion = " Zoey knight </think> <answer> " + \
        compact_answer(record["names"], record["solution"]) + " </answer>"
    assert task.score(completion, record)["total"] == 3.0
    assert compact_cot(parse_statements(record["statements"]), record["names"]).startswith("Zoey")
    assert task.subset(record) == "people3"
    assert task.subset_from_filename("train/people3_num1000.jsonl") == "people3"


def test_user_template_and_chat_requires_tokenizer():
    r = generate_puzzles(3, 1, seed=0)[0]
    assert get_task("kk", template="Q: {quiz}\nA: ").prompt(r) == f"Q: {r['quiz']}\nA: <think>"
    with pytest.raises(ValueError, match="placeholders"):
        get_task("kk", template="{question}").prompt(r)
    with pytest.raises(ValueError, match="chat"):
        get_task("kk", template="chat").prompt(r)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("solution"), "missing"),
    (lambda r: r.update(statements="(('and', ('lying', 1)),"), "literal|arity"),
    (lambda r: r.update(statements="__import__('os').system('id')"), "literal"),
    (lambda r: r.update(names=["Nobody", *r["names"][1:]]), "not in quiz"),
    (lambda r: r.update(solution=[not x for x in r["solution"]]), "unique"),
    (lambda r: r.update(statements="(('lying', 9),)*3"), "literal|person"),
])
def test_validate_rejects_bad_records(mutate, message):
    r = generate_puzzles(3, 1, seed=0)[0]
    mutate(r)
    with pytest.raises((ValueError, TypeError), match=message):
        get_task("kk").validate(r)


def test_cli_generate_layout_disjoint_deterministic(tmp_path, capsys):
    args = ["--people", "2", "3", "--train-per-level", "300", "--test-per-level", "100",
            "--seed", "5"]
    assert cli_generate(["--out", str(tmp_path / "a"), *args]) == 0
    assert "only 299" in capsys.readouterr().err
    cli_generate(["--out", str(tmp_path / "b"), *args])
    names = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*"))
    assert names == ["test", "test/people2_num100.jsonl", "test/people3_num100.jsonl", "train",
                     "train/people2_num299.jsonl", "train/people3_num300.jsonl"]
    for name in names[1:3] + names[4:]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for n, n_train in ((2, 299), (3, 300)):
        def load(split, count, n=n):
            path = tmp_path / "a" / split / f"people{n}_num{count}.jsonl"
            return [json.loads(line) for line in path.read_text().splitlines()]
        train, test = load("train", n_train), load("test", 100)
        assert len({r["statements"] for r in train}) == n_train
        assert not {r["statements"] for r in train} & {r["statements"] for r in test}


class _ChatTokenizer:
    chat_template = "fake"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


def test_chat_template_uses_the_tokenizer():
    r = generate_puzzles(3, 1, seed=0)[0]
    prompt = get_task("kk", template="chat").prompt(r, tokenizer=_ChatTokenizer())
    assert prompt.startswith(f"<user>{r['quiz']}\n\n") and prompt.endswith("<assistant><think>")
    assert "NAME is a knight" in prompt
