"""nbgrader configuration for the forja lessons.

Read by ``build_student.py`` (which turns the instructor notebooks in
``source/`` into the student notebooks beside this file) and by nbgrader's
own commands when they run from this directory.
"""

c = get_config()  # noqa: F821  (nbgrader/traitlets provides get_config)

c.CourseDirectory.course_id = "forja"
c.CourseDirectory.source_directory = "source"

# Rust cells: the solution between "// BEGIN SOLUTION" and "// END SOLUTION"
# becomes todo!(), so the student's stub compiles and panics when called.
c.ClearSolutions.code_stub = {"rust": "todo!()"}
c.ClearSolutions.text_stub = "ESCRIBÍ TU RESPUESTA ACÁ"
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Self-check cells are graded and locked; solution cells stay editable.
c.LockCells.lock_grade_cells = True
c.LockCells.lock_solution_cells = False
c.LockCells.lock_readonly_cells = True
c.LockCells.lock_all_cells = False
