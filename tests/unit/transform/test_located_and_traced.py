"""Problems placed in a document's text, each function's result in the trace, the table view
of mappings and its rewriting."""

from __future__ import annotations

import pytest

from provisor.errors import InputError, InvalidTransformationError
from provisor.transform import Failed, FunctionStep, Transformation, Transformed
from provisor.transform.document import compile_document
from provisor.transform.locate import Place, blank_comments, locate
from provisor.transform.table import rewrite, rows

DOC = """{
  /* users only */
  "user": {
    "mappings": [
      {"sourcePath": "$.userName", "targetPath": "$.login"},
      {"sourcePath": "$.x[", "targetPath": "$.y", "bogus": 1},
      {
        "sourcePath": "$.a",
        "targetPath": "$.b",
        "functions": [{"function": "nope"}]
      }
    ]
  }
}"""


def _problems(text: str) -> list[str]:
    with pytest.raises(InvalidTransformationError) as caught:
        compile_document(text)
    return caught.value.problems


def test_each_problem_is_placed_at_its_path_in_the_text() -> None:
    located = {p.path: p for p in locate(DOC, _problems(DOC))}
    assert located["user.mappings[1].bogus"].place == Place(6, 51, 6, 61)
    assert located["user.mappings[1].sourcePath"].place == Place(6, 8, 6, 28)
    function = located["user.mappings[2].functions[0].function"].place
    assert function is not None and function.line == 10
    assert function.column == DOC.splitlines()[9].index('"function"') + 1


def test_a_problem_of_a_whole_object_marks_its_first_line_only() -> None:
    text = '{"user": {"mappings": [\n  {\n   "targetPath": "$.a"\n  }\n]}}'
    (problem,) = locate(text, _problems(text))
    assert problem.path == "user.mappings[0]"
    assert problem.place == Place(2, 3, 2, 4)


def test_text_that_is_not_json_is_placed_where_the_parser_stopped() -> None:
    text = '{\n  "user": {\n    "mappings": [,]\n  }\n}'
    (problem,) = locate(text, _problems(text))
    assert problem.place is not None and (problem.place.line, problem.place.column) == (3, 18)
    assert "not valid JSON" in problem.message


def test_comments_keep_positions_and_names_not_in_the_text_stay_unplaced() -> None:
    assert len(blank_comments(DOC)) == len(DOC)
    assert "users only" not in blank_comments(DOC)
    assert blank_comments('{"a": "/* kept */"}') == '{"a": "/* kept */"}'
    (problem,) = locate('{"user": {"mappings": []}}', ["%pw%: pw is a credential"])
    assert problem.place is None and problem.to_dict() == {
        "message": "%pw%: pw is a credential",
        "path": "%pw%",
    }


def test_a_bare_document_is_located_from_document() -> None:
    text = '{"mappings": [{"sourcePath": "$.a"}]}'
    (problem,) = locate(text, _problems(text))
    assert problem.path == "document.mappings[0]"
    assert problem.place is not None and problem.place.column == 15


def test_the_trace_records_each_functions_result_only_when_tracing() -> None:
    document = {
        "user": {
            "mappings": [
                {
                    "sourcePath": "$.name",
                    "targetPath": "$.out",
                    "functions": [
                        {"function": "toUpperCaseString"},
                        {"function": "concatString", "suffix": "!"},
                    ],
                },
                {
                    "sourcePath": "$.name",
                    "targetPath": "$.never",
                    "functions": [
                        {"function": "replaceAllString", "regex": "ada", "replacement": "x"}
                    ],
                    "condition": "$.name == 'bob'",
                },
            ]
        }
    }
    transformation = Transformation(document)
    traced = transformation.apply("user", {"name": "ada"}, trace=True)
    assert isinstance(traced, Transformed)
    applied, skipped = traced.trace
    assert applied.functions == (
        FunctionStep("toUpperCaseString", "ADA"),
        FunctionStep("concatString", "ADA!"),
    )
    assert applied.to_dict()["functions"] == [
        {"function": "toUpperCaseString", "result": "ADA"},
        {"function": "concatString", "result": "ADA!"},
    ]
    assert (applied.input, applied.value) == ("ada", "ADA!")
    assert skipped.status == "skipped" and skipped.functions == ()
    plain = transformation.apply("user", {"name": "ada"})
    assert isinstance(plain, Transformed) and plain.trace == ()
    assert plain.document == traced.document == {"out": "ADA!"}


def test_a_failing_function_is_traced_with_the_results_before_it() -> None:
    document = {
        "user": {
            "mappings": [
                {
                    "sourcePath": "$.name",
                    "targetPath": "$.out",
                    "functions": [
                        {"function": "toUpperCaseString"},
                        {"function": "substring", "beginIndex": 9},
                    ],
                }
            ]
        }
    }
    failed = Transformation(document).apply("user", {"name": "ada"}, trace=True)
    assert isinstance(failed, Failed), failed
    (step,) = failed.trace
    assert step.status == "failed"
    assert step.functions == (FunctionStep("toUpperCaseString", "ADA"),)


TABLE = {
    "user": {
        "mappings": [
            {"sourcePath": "$.userName", "targetPath": "$.login", "description": "kept"},
            {"constant": "x", "targetVariable": "v", "scope": "createEntity"},
            {
                "sourcePaths": ["$.a", "$.b"],
                "type": "valueMapping",
                "targetPath": "$.c",
                "valueMappings": [{"key": ["1", "2"], "mappedValue": "3"}],
                "functions": [{"function": "toLowerCaseString"}],
                "condition": "$.a == '1'",
            },
        ]
    },
    "group": {"ignore": True, "mappings": []},
}


def test_rows_show_each_mapping_in_order() -> None:
    first, second, third = rows(TABLE)
    assert (first.key, first.source, first.target, first.source_editable) == (
        "user:0",
        "$.userName",
        "$.login",
        True,
    )
    assert (second.source, second.target, second.scope) == (
        'constant "x"',
        "variable v",
        "createEntity",
    )
    assert not second.source_editable
    assert third.source == "$.a, $.b" and third.function_names == ("toLowerCaseString",)
    assert third.condition == "$.a == '1'" and third.type == "valueMapping"
    assert rows({"mappings": [{"sourcePath": "$", "targetPath": "$"}]})[0].key == "*:0"


def test_rewriting_changes_only_the_cells_given() -> None:
    changed = rewrite(
        TABLE,
        {
            "user:0": {"sourcePath": " $.id ", "condition": "$.active == true"},
            "user:1": {"scope": "", "sourcePath": "$.ignored"},
            "user:2": {"functions": '[{"function": "toUpperCaseString"}]'},
        },
    )
    first, second, third = changed["user"]["mappings"]
    assert first == {
        "sourcePath": "$.id",
        "targetPath": "$.login",
        "description": "kept",
        "condition": "$.active == true",
    }
    assert second == {"constant": "x", "targetVariable": "v"}
    assert third["functions"] == [{"function": "toUpperCaseString"}]
    assert rows(TABLE)[0].source_path == "$.userName"  # a copy was changed
    compile_document(changed)


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"user:9": {"targetPath": "$.x"}}, "no row"),
        ({"nope:0": {"targetPath": "$.x"}}, "no row"),
        ({"user:0": {"type": "remove"}}, "not a column"),
        ({"user:0": {"functions": "[oops"}}, "user row 1, functions: not JSON"),
        ({"user:0": {"functions": "{}"}}, "a JSON array"),
        ({"user:0": {"scope": "always"}}, "scope: one of"),
    ],
)
def test_rewriting_refuses_what_it_cannot_read(
    edits: dict[str, dict[str, str]], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        rewrite(TABLE, edits)
