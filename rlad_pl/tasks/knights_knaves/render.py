"""Text renderings of a puzzle: the quiz in the published style, the compact prompt form,
and the solution texts of the published schema."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .logic import Statement

# Common first names. Several are whole-word substrings of others (Liam/William, Ella/Isabella,
# Jack/Jackson, Zoe/Zoey, Nathan/Jonathan, Sam/Samuel, Max/Maxwell, Anna/Hannah, Leo/Leon, Eli/Elias)
# so that answer parsing must match whole words.
NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "William", "Sophia", "James", "Isabella", "Oliver",
    "Mia", "Benjamin", "Charlotte", "Elijah", "Amelia", "Lucas", "Harper", "Mason", "Evelyn",
    "Logan", "Abigail", "Alexander", "Emily", "Ethan", "Ella", "Jacob", "Elizabeth", "Michael",
    "Sofia", "Daniel", "Avery", "Henry", "Scarlett", "Jackson", "Grace", "Sebastian", "Chloe",
    "Aiden", "Victoria", "Matthew", "Riley", "Samuel", "Aria", "David", "Lily", "Joseph", "Aubrey",
    "Carter", "Zoey", "Owen", "Zoe", "Wyatt", "Penelope", "John", "Lillian", "Jack", "Addison",
    "Luke", "Layla", "Jayden", "Natalie", "Dylan", "Camila", "Grayson", "Hannah", "Levi", "Anna",
    "Isaac", "Brooklyn", "Gabriel", "Samantha", "Julian", "Leah", "Mateo", "Anthony",
    "Aurora", "Jaxon", "Savannah", "Lincoln", "Audrey", "Joshua", "Claire", "Christopher", "Skylar",
    "Andrew", "Lucy", "Theodore", "Paisley", "Caleb", "Everly", "Ryan", "Caroline", "Asher",
    "Nova", "Nathan", "Genesis", "Thomas", "Emilia", "Leo", "Kennedy", "Isaiah", "Maya", "Charles",
    "Willow", "Josiah", "Kinsley", "Hudson", "Naomi", "Christian", "Sarah", "Hunter", "Allison",
    "Connor", "Gabriella", "Eli", "Madelyn", "Ezra", "Cora", "Aaron", "Ruby", "Landon", "Eva",
    "Adrian", "Serenity", "Jonathan", "Autumn", "Nolan", "Adeline", "Jeremiah", "Hailey",
    "Easton", "Gianna", "Elias", "Valentina", "Colton", "Isla", "Cameron", "Eliana", "Carson",
    "Quinn", "Robert", "Nevaeh", "Angelo", "Ivy", "Maverick", "Sadie", "Nicholas", "Piper",
    "Dominic", "Lydia", "Jordan", "Alexa", "Austin", "Josephine", "Ian", "Emery", "Max",
    "Maxwell", "Leon", "Sam", "Jason", "Rose", "Tyler", "Alice", "Kevin", "Sophie", "Jasper",
)

INTRO = ("On this island every inhabitant is either a knight, who always tells the truth, "
         "or a knave, who always lies.")
QUESTION = "So who is a knight and who is a knave?"
# Reporting phrasings; {name} is the speaker, {claim} the rendered statement.
PHRASINGS = (
    '{name} said, "{claim}."',
    '"{claim}," {name} claimed.',
    '{name} told you that {claim_lc}.',
    '{name} stated: "{claim}."',
    'In {name}\'s words: "{claim}."',
    '{name} remarked, "{claim}."',
    '"{claim}," said {name}.',
    '{name} asserted that {claim_lc}.',
    'According to {name}, "{claim}."',
    '{name} insisted, "{claim}."',
    '{name} mentioned that {claim_lc}.',
    'As {name} put it, "{claim}."',
)


def sample_names(n_people: int, rng: random.Random) -> list[str]:
    """n distinct names from the pool."""
    return rng.sample(NAMES, n_people)


def claim_text(stmt: Statement, names: Sequence[str]) -> str:
    """English content of a statement, e.g. 'If Liam is a knave then Ava is a knight'."""
    op = stmt[0]
    if op == "telling-truth":
        return f"{names[stmt[1]]} is a knight"
    if op == "lying":
        return f"{names[stmt[1]]} is a knave"
    if op == "not":
        inner = stmt[1]
        if inner[0] == "telling-truth":
            return f"{names[inner[1]]} is not a knight"
        if inner[0] == "lying":
            return f"{names[inner[1]]} is not a knave"
        return f"it is not the case that {claim_text(inner, names)}"
    parts = [claim_text(s, names) for s in stmt[1:]]
    if op == "and":
        return " and ".join(parts)
    if op == "or":
        return " or ".join(parts)
    if op == "->":
        return f"If {parts[0]} then {parts[1]}"
    if op == "<=>":
        return f"{parts[0]} if and only if {parts[1]}"
    raise ValueError(f"unknown operator {op!r}")


def _join_names(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + ", and " + names[-1]


def quiz_text(statements: Sequence[Statement], names: Sequence[str], rng: random.Random) -> str:
    """The quiz in the published style: intro, inhabitants, one sentence per person, question."""
    lines = [INTRO, f"You meet {len(names)} inhabitants: {_join_names(names)}."]
    for i, stmt in enumerate(statements):
        claim = claim_text(stmt, names)
        claim_lc = claim[0].lower() + claim[1:] if claim.startswith("If ") else claim
        phrasing = rng.choice(PHRASINGS)
        lines.append(phrasing.format(name=names[i], claim=claim, claim_lc=claim_lc))
    lines.append(QUESTION)
    return " ".join(lines)


def compact_claim(stmt: Statement, names: Sequence[str]) -> str:
    """Short form: 'Liam knave iff Ava knave', 'not Zoey knight', 'if A knight then B knave'."""
    op = stmt[0]
    if op == "telling-truth":
        return f"{names[stmt[1]]} knight"
    if op == "lying":
        return f"{names[stmt[1]]} knave"
    parts = [compact_claim(s, names) for s in stmt[1:]]
    if op == "not":
        return f"not {parts[0]}"
    if op in ("and", "or"):
        return f" {op} ".join(parts)
    if op == "->":
        return f"if {parts[0]} then {parts[1]}"
    if op == "<=>":
        return f"{parts[0]} iff {parts[1]}"
    raise ValueError(f"unknown operator {op!r}")


def compact_quiz(statements: Sequence[Statement], names: Sequence[str]) -> str:
    """'Zoey : Liam knave iff Ava knave . Liam : not Zoey knight . ... ?' (whitespace-separated)."""
    body = " ".join(f"{names[i]} : {compact_claim(s, names)} ." for i, s in enumerate(statements))
    return body + " ?"


def role(knight: bool) -> str:
    return "knight" if knight else "knave"


def solution_text(names: Sequence[str], solution: Sequence[bool]) -> str:
    """'Zoey is a knave, and Oliver is a knight.'"""
    return _join_names([f"{n} is a {role(k)}" for n, k in zip(names, solution, strict=False)]) + "."


def solution_text_format(names: Sequence[str], solution: Sequence[bool]) -> str:
    """'(1) Zoey is a knave\\n(2) Oliver is a knight'"""
    return "\n".join(f"({i + 1}) {n} is a {role(k)}" for i, (n, k) in enumerate(zip(names, solution, strict=False)))


def compact_answer(names: Sequence[str], solution: Sequence[bool]) -> str:
    """'Zoey is a knave . Oliver is a knight .' (whitespace-separated; parses under the reward)."""
    return " ".join(f"{n} is a {role(k)} ." for n, k in zip(names, solution, strict=False))
