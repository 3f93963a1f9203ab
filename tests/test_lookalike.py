"""Look-alike submissions: normalising answer files, and a generated class with planted, disguised copies.

No engine is needed: the class is made of the course's real student notebooks
with their answer cells filled in, read back with the grader's own reader.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from containerlab import cli, lookalike, report
from containerlab.checks.submission import SOLUTIONS

STARTERS = lookalike.STARTERS


# --------------------------------------------------------------------------- normalising


def test_dockerfile_disguises_normalise_away() -> None:
    """Do case, comments, whitespace, continuation lines, ARG and stage names and ENV order leave the same lines?"""
    original = """ARG BASE=python:3.13-slim
FROM ${BASE} AS builder
ENV A=1 B=2
RUN pip install \\
    --no-cache-dir flask
FROM $BASE
COPY --from=builder /opt /opt
CMD ["python", "app.py"]
"""
    disguised = """# my own work
arg Py=python:3.13-slim

from $Py as deps
env B 2
ENV A="1"
# a comment inside
run pip install --no-cache-dir flask
FROM ${Py}
copy --from=deps /opt /opt
cmd [ "python","app.py" ]
"""
    assert lookalike.normalise_dockerfile(disguised) == lookalike.normalise_dockerfile(original)


def test_dockerfile_order_that_changes_the_image_is_kept() -> None:
    """Are two RUN lines in another order still different (only ENV/LABEL/EXPOSE runs are sorted)?"""
    assert lookalike.normalise_dockerfile("RUN a\nRUN b\n") != lookalike.normalise_dockerfile("RUN b\nRUN a\n")


def test_run_command_option_order_and_spelling_normalise_away() -> None:
    """Do option order, short or long names, --opt=value and $(pwd) leave the same lines?"""
    one = 'docker run -d -p 8000:80 -v "$(pwd)/service/data:/data:ro" --env-file service/.env img:1 serve'
    two = ("# start it\ndocker run --env-file=service/.env \\\n  --publish 8000:80 --detach \\\n"
           "  --volume ${PWD}/service/data:/data:ro img:1 serve\n")
    assert lookalike.normalise_run_command(one) == lookalike.normalise_run_command(two)
    assert lookalike.normalise_run_command(one)[-2:] == ["image img:1", "args serve"]


def test_compose_key_order_and_list_form_normalise_away() -> None:
    """Do key order, comments and the list form of environment leave the same lines?"""
    one = "services:\n  api:\n    image: a\n    environment:\n      X: '1'\n    ports: ['8000:80']\n"
    two = "# stack\nservices:\n  api:\n    ports:\n      - 8000:80\n    environment:\n      - X=1\n    image: a\n"
    assert lookalike.normalise_compose(one) == lookalike.normalise_compose(two)


def test_reference_lines_hold_the_solution_and_the_starter() -> None:
    """Are the official solution's lines (without nbgrader's markers) and the starter's in the reference?"""
    file = next(f for f in lookalike.answer_files() if f.filename == "ex1.Dockerfile")
    reference = lookalike.reference_lines(file)
    assert "WORKDIR /app" in reference and "RAISE NotImplementedError()" in reference
    assert not any("SOLUTION" in line for line in reference)


# --------------------------------------------------------------------------- a generated class


def _solution(filename: str) -> str:
    return "\n".join(line for line in (SOLUTIONS / filename).read_text(encoding="utf-8").splitlines()
                     if "SOLUTION" not in line) + "\n"


def _honest(rng: random.Random, template: int) -> dict[str, str]:
    """One student's answers: one of three ways of writing them, with choices of their own."""
    base = rng.choice(["python:3.13-slim", "python:3.12-slim", "python:3.13-slim-bookworm", "python:3.13"])
    workdir = rng.choice(["/app", "/srv", "/code", "/opt/service", "/usr/src/app", "/home/app"])
    port = rng.choice(["80", "8000", "8080", "5000"])
    env = rng.sample(["PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "PIP_NO_CACHE_DIR=1",
                      "PIP_DISABLE_PIP_VERSION_CHECK=1", "LANG=C.UTF-8"], k=rng.randint(1, 3))
    user = rng.choice(["app", "appuser", "nonroot", "service", "svc"])
    envs = "".join(f"ENV {e}\n" for e in env)
    cmd = rng.choice([f'CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "{port}"]',
                      f'CMD uvicorn src.customer_value.api:app --host 0.0.0.0 --port {port}',
                      f'ENTRYPOINT ["python", "-m", "uvicorn"]\nCMD ["src.customer_value.api:app", "--host", '
                      f'"0.0.0.0", "--port", "{port}"]'])
    if template == 0:
        ex1 = f"FROM {base}\n{envs}WORKDIR {workdir}\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n" \
              f"COPY src/ src/\nEXPOSE {port}\n{cmd}\n"
    elif template == 1:
        ex1 = f"FROM {base}\nWORKDIR {workdir}\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n" \
              f"{envs}EXPOSE {port}\n{cmd}\n"
    else:
        ex1 = f"FROM {base}\n{envs}RUN mkdir -p {workdir}\nWORKDIR {workdir}\nCOPY requirements.txt ./\n" \
              f"RUN python -m pip install --no-cache-dir --requirement requirements.txt\nCOPY src ./src\n{cmd}\n"
    stage = rng.choice(["builder", "build", "deps", "compile"])
    ex2 = f"FROM {base} AS {stage}\nRUN python -m venv /venv\nENV PATH=/venv/bin:$PATH\n" \
          f"COPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\n" \
          f"FROM {base}\nRUN useradd --create-home {user}\nCOPY --from={stage} /venv /venv\n{envs}" \
          f"ENV PATH=/venv/bin:$PATH\nWORKDIR {workdir}\nCOPY src/ src/\nUSER {user}\nEXPOSE {port}\n{cmd}\n"
    name = rng.choice(["ex3", "api", "customer-value", "cv", "service"])
    volume = rng.choice(["pgdata", "db-data", "data"])
    options = [f"--name {name}", f"-p {rng.choice(['8000', '8080', '9000'])}:{port}",
               rng.choice(["--env-file service/.env", "-e API_TOKEN_FILE=/run/secrets/token -v "
                           "$PWD/token.txt:/run/secrets/token:ro"]),
               rng.choice(["-v $PWD/service/data:/data:ro", "--mount type=bind,src=$PWD/service/data,dst=/data,ro"])]
    rng.shuffle(options)
    run = f"docker run -d {' '.join(options)} {rng.choice(['cl-ex-ex3:latest', 'cl-ex-ex3', 'ex3:1'])}\n"
    compose = (f"services:\n  api:\n    image: cl-ex-ex6-api:latest\n    ports:\n      - \"8000:{port}\"\n"
               f"    environment:\n      API_TOKEN: ${{API_TOKEN}}\n      DATABASE_URL: postgresql://"
               f"{user}:${{POSTGRES_PASSWORD}}@db:5432/{user}\n    depends_on:\n      db:\n"
               f"        condition: service_healthy\n  db:\n    image: postgres:17\n    environment:\n"
               f"      POSTGRES_USER: {user}\n      POSTGRES_DB: {user}\n"
               f"      POSTGRES_PASSWORD: ${{POSTGRES_PASSWORD}}\n    healthcheck:\n"
               f"      test: [\"CMD-SHELL\", \"pg_isready -U {user}\"]\n      interval: {rng.randint(1, 10)}s\n"
               + rng.choice(["", f"    volumes:\n      - {volume}:/var/lib/postgresql/data\nvolumes:\n  {volume}: {{}}\n"]))
    return {"ex1.Dockerfile": ex1, "ex2.Dockerfile": ex2, "ex3.Dockerfile": ex1, "ex3-run.sh": run,
            "compose.yaml": compose}


def _disguised(answers: dict[str, str]) -> dict[str, str]:
    """A copy made to look different: renamed stages, reordered ENV lines, lower case, comments, spacing,
    run options reordered and respelled, compose keys reordered."""
    def dockerfile(text: str) -> str:
        lines = text.splitlines()
        for old in ("builder", "build", "deps", "compile"):
            lines = [ln.replace(f"AS {old}", "as stage0").replace(f"--from={old}", "--from=stage0") for ln in lines]
        envs = [i for i, ln in enumerate(lines) if ln.startswith("ENV ") and "PATH" not in ln]
        if len(envs) > 1 and envs == list(range(envs[0], envs[0] + len(envs))):
            lines[envs[0]:envs[-1] + 1] = reversed(lines[envs[0]:envs[-1] + 1])
        out = ["# Dockerfile written by me", ""]
        for ln in lines:
            keyword, _, rest = ln.partition(" ")
            out += [f"{keyword.lower()}   {rest}", "# next step"]
        return "\n".join(out) + "\n"

    words = answers["ex3-run.sh"].split()
    options: list[str] = []
    for word in words[2:-1]:
        if word.startswith("-"):
            options.append({"-p": "--publish", "-d": "--detach", "-v": "--volume", "-e": "--env"}.get(word, word))
        else:
            options[-1] += f"={word}"
    run_text = "# run it\ndocker run \\\n  " + " \\\n  ".join(reversed(options)) + f" \\\n  {words[-1]}\n"
    import yaml

    data = yaml.safe_load(answers["compose.yaml"])
    data["services"] = dict(reversed(list(data["services"].items())))
    for service in data["services"].values():
        items = list(service.items())
        service.clear()
        service.update(reversed(items))
    compose = "# my stack\n" + yaml.safe_dump(data, sort_keys=False, indent=4)
    return {"ex1.Dockerfile": dockerfile(answers["ex1.Dockerfile"]), "ex2.Dockerfile": dockerfile(
        answers["ex2.Dockerfile"]), "ex3.Dockerfile": dockerfile(answers["ex3.Dockerfile"]),
        "ex3-run.sh": run_text, "compose.yaml": compose}


def _write_student(folder: Path, files: dict[str, str]) -> None:
    """Write the course's student notebooks with these answers in their answer cells (nbgrader's layout)."""
    target = folder / "ch14"
    target.mkdir(parents=True)
    by_notebook: dict[str, list[lookalike.AnswerFile]] = {}
    for file in lookalike.answer_files():
        by_notebook.setdefault(file.notebook, []).append(file)
    for notebook, files_here in by_notebook.items():
        data = json.loads((STARTERS / notebook).read_text(encoding="utf-8"))
        for cell in data["cells"]:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            for file in files_here:
                if grade_id == file.grade_id and file.filename in files:
                    cell["source"] = f"%%writefile {file.filename}\n{files[file.filename]}"
        (target / notebook).write_text(json.dumps(data), encoding="utf-8")


PLANTED = [("s03", "s17"), ("s08", "s12")]
SOLUTION_WRITERS = ["s01", "s05", "s10", "s15"]


def _make_class(root: Path, students: int = 20, seed: int = 14) -> Path:
    """``students`` students from three templates with choices of their own; four wrote the official
    solution (spacing and comments of their own); two planted copies, disguised."""
    rng = random.Random(seed)
    submissions = root / "submitted"
    written: dict[str, dict[str, str]] = {}
    for i in range(1, students + 1):
        name = f"s{i:02d}"
        if name in SOLUTION_WRITERS:
            written[name] = {f: _solution(f) for f in ("ex1.Dockerfile", "ex2.Dockerfile", "ex3.Dockerfile",
                                                       "ex3-run.sh", "compose.yaml")}
            written[name]["ex1.Dockerfile"] = "# " + name + "\n" + written[name]["ex1.Dockerfile"].replace("\n\n", "\n")
        else:
            written[name] = _honest(rng, i % 3)
    for original, copy in PLANTED:
        written[copy] = _disguised(written[original])
    for name, files in written.items():
        _write_student(submissions / name, files)
    return submissions


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_class(tmp_path_factory.mktemp("class"))


def test_planted_copies_come_first_and_solution_writers_are_not_flagged(generated: Path) -> None:
    """Are the two disguised copies the first two pairs and flagged, and no pair of solution writers flagged?"""
    pairs = lookalike.compare(lookalike.read_class(generated))
    assert {(p.a, p.b) for p in pairs[:2]} == set(PLANTED)
    assert all(p.flagged and p.similarity > 0.9 for p in pairs[:2])
    flagged = [(p.a, p.b) for p in pairs if p.flagged]
    assert not [pair for pair in flagged if set(pair) & set(SOLUTION_WRITERS)]
    assert set(flagged) == set(PLANTED), "an honest pair from the same template was flagged"


def test_students_who_wrote_the_solution_share_nothing_of_their_own(generated: Path) -> None:
    """Is the similarity of two students who both wrote the official solution 0 (they are not even listed)?"""
    pairs = {(p.a, p.b): p for p in lookalike.compare(lookalike.read_class(generated))}
    assert not [pair for pair in pairs if set(pair) <= set(SOLUTION_WRITERS)]


def test_lookalike_command_writes_the_report_saying_it_is_not_a_grade(generated: Path, tmp_path: Path,
                                                                       capsys) -> None:
    """Does `containerlab lookalike` print the flagged pairs and write HTML and CSV that say they are not a grade?"""
    out = tmp_path / "report"
    assert cli.main(["lookalike", str(generated), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(report.LOOKALIKE_HEADER) and "never a grade" in printed.lower()
    assert "FLAGGED s03 / s17" in printed and "FLAGGED s08 / s12" in printed
    page = (out / "lookalike.html").read_text(encoding="utf-8")
    assert "NEVER a grade" in page and "s03 / s17: lines of their own they share" in page
    rows = list(csv.DictReader((out / "lookalike.csv").open(encoding="utf-8")))
    assert {(r["student_a"], r["student_b"]) for r in rows[:2]} == set(PLANTED)
    assert [r["flagged"] for r in rows[:3]] == ["yes", "yes", "no"]


def test_an_unreadable_notebook_is_a_problem_of_that_student_only(generated: Path, tmp_path: Path) -> None:
    """Does a broken notebook leave that student's file out, named, while the rest is compared?"""
    import shutil

    submissions = tmp_path / "submitted"
    shutil.copytree(generated, submissions)
    (submissions / "s02" / "ch14" / "ex2-improve-the-image.ipynb").write_text("{ not json", encoding="utf-8")
    read = lookalike.read_class(submissions)
    assert "ex2.Dockerfile" not in read.lines["s02"] and "ex1.Dockerfile" in read.lines["s02"]
    assert read.problems["s02"][0].startswith("ex2.Dockerfile:")
    assert {(p.a, p.b) for p in lookalike.compare(read)[:2]} == set(PLANTED)


def test_lookalike_without_submissions_exits_2(tmp_path: Path, capsys) -> None:
    """Does a missing submissions folder end with exit status 2 and a sentence saying so?"""
    assert cli.main(["lookalike", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    assert "no submissions folder" in capsys.readouterr().err


def test_a_yaml_alias_bomb_is_compared_as_text() -> None:
    """Does a compose file whose aliases expand exponentially fall back to its lines instead of blowing up?"""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    # Expanded, the last alias would be 9**9 scalars: a result at all, of the file's own 9 lines, is the test.
    lines = lookalike.normalise_compose(bomb)
    assert len(lines) == 9
