"""nbgrader configuration of the Chapter 14 exercises (the course directory is the repository root).

Instructors keep the source versions (solutions, hidden tests) in solutions/;
`nbgrader generate_assignment ch14` writes the student versions into
exercises/ (what is committed there). The other nbgrader steps (release,
collect, autograde, formgrader, export) use nbgrader's usual folders
(submitted/, autograded/, feedback/, gradebook.db), which git ignores.
"""

from pathlib import Path

c = get_config()  # noqa: F821  (defined by nbgrader when it loads this file)

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.course_id = "ch14-containerisation"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Never copied into the student version nor over a submission: the MyST sources
# of the notebooks, and the files the answer cells write (the solution
# Dockerfiles, run commands and compose file are real files in solutions/ch14/).
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "*.md",
    "*.Dockerfile",
    "*.dockerfile",
    "ex*-run.sh",
    "compose.yaml",
    "ex2-report.json",
]

# Image builds inside cells take minutes on a cold build cache: the default
# 30 s per cell would kill them. A cell that loops forever is still stopped.
c.Execute.timeout = 1800
c.ExecutePreprocessor.timeout = 1800

# Students copy answer cells (JupyterLab keeps the nbgrader metadata, so a
# grade_id repeats: jupyter/nbgrader#1083) and paste answers into new cells.
# nbgrader runs every copy in notebook order; containerlab grade grades the copy
# the student ran last. LastRunAnswers (first, before ClearOutput drops the
# execution counts) comments out the other copies so both grade the same text.
# The rest is nbgrader 0.9's default list.
c.Autograde.sanitize_preprocessors = [
    "containerlab.autograde.LastRunAnswers",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Autograde copies the course's files over a submission; the student's
# .dockerignore is kept, because the task invites editing it (it decides what
# goes into the image). Nothing else of theirs is: code, lockfile and data are
# the course's. The same rule as containerlab grade (checks.submission.STUDENT_CONTEXT_FILES).
c.Autograde.exclude_overwriting = {"ch14": ["service/.dockerignore"]}
